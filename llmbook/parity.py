"""Copy weights between twin PyTorch and TensorFlow models, so parity checks compare like with like.

Each twin pair is registered by class name. Its converter lists, in order, every
(TF variable, PyTorch tensor, transpose) triple: `transpose` is True where PyTorch stores
(out, in) (`nn.Linear.weight`) and Keras stores (in, out) (`Dense.kernel`).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

_PAIRS: dict[str, Callable] = {}


def pair(name: str):
    """Register the converter of the twin classes called `name` in llmbook.torch and llmbook.tf."""
    def register(fn):
        _PAIRS[name] = fn
        return fn
    return register


def _triples(torch_model, tf_model):
    name = type(torch_model).__name__
    if type(tf_model).__name__ != name:
        raise TypeError(f"not a twin pair: {name} (PyTorch) vs {type(tf_model).__name__} (TensorFlow)")
    if name not in _PAIRS:
        raise KeyError(f"no weight converter registered for {name}; known pairs: {sorted(_PAIRS)}")
    triples = _PAIRS[name](torch_model, tf_model)
    n_torch = sum(1 for _ in torch_model.parameters())
    n_mapped = sum(len(getattr(t, "covers", (t,))) for _, t, _ in triples)   # a TorchView stands for several
    if n_mapped != n_torch or len(triples) != len(tf_model.weights):
        raise ValueError(f"{name}: converter maps {n_mapped} PyTorch tensors to {len(triples)} TF variables but "
                         f"the models have {n_torch} (PyTorch) and {len(tf_model.weights)} (TensorFlow)")
    for var, tensor, transpose in triples:
        shape = tuple(tensor.shape[::-1]) if transpose else tuple(tensor.shape)
        if tuple(var.shape) != shape:
            raise ValueError(f"{name}: TF variable {var.path} has shape {tuple(var.shape)} but the "
                             f"PyTorch weight gives {shape}: were both models built with the same sizes?")
    return triples


def torch_to_tf(torch_model, tf_model) -> None:
    """Set every weight of `tf_model` from its twin `torch_model`."""
    for var, tensor, transpose in _triples(torch_model, tf_model):
        value = tensor.detach().cpu().numpy()
        var.assign(value.T if transpose else value)


def tf_to_torch(tf_model, torch_model) -> None:
    """Set every weight of `torch_model` from its twin `tf_model`."""
    import torch
    with torch.no_grad():
        for var, tensor, transpose in _triples(torch_model, tf_model):
            value = np.asarray(var.numpy())
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value.T if transpose else value)))


@pair("NNLMFromScratch")
def _nnlm_from_scratch(tm, fm):
    names = ["C", "H", "d", "U", "b"] + (["W"] if tm.W is not None else [])
    return [(getattr(fm, n), getattr(tm, n), False) for n in names]


@pair("NNLM")
def _nnlm(tm, fm):
    out = [(fm.embed.embeddings, tm.embed.weight, False),
           (fm.hidden.kernel, tm.hidden.weight, True), (fm.hidden.bias, tm.hidden.bias, False),
           (fm.out.kernel, tm.out.weight, True), (fm.out.bias, tm.out.bias, False)]
    if tm.direct is not None:
        out.append((fm.direct.kernel, tm.direct.weight, True))
    return out


# ----------------------------------------------------------------------------------------------
# Chapters 2-3: recurrent networks. Keras and PyTorch store recurrent layers differently, so some
# Keras weights are a function of several PyTorch tensors: a TorchView stands in for them.


class TorchView:
    """Several PyTorch tensors seen as one Keras weight: gate blocks reordered, two biases summed, ...

    A converter may put one where a triple has a PyTorch tensor (with transpose False): `covers` are
    the tensors it stands for, `to_tf(*covers)` gives the Keras-layout tensor and `to_torch(value)`
    splits a Keras-layout tensor back into one tensor per cover.
    """

    def __init__(self, covers, to_tf, to_torch):
        self.covers, self._to_tf, self._to_torch = tuple(covers), to_tf, to_torch
        self.shape = tuple(self.detach().shape)

    def detach(self):
        """The Keras-layout value, as a PyTorch tensor."""
        return self._to_tf(*(c.detach() for c in self.covers))

    def copy_(self, value) -> None:
        """Write a Keras-layout value into the covered tensors (call under torch.no_grad())."""
        for tensor, part in zip(self.covers, self._to_torch(value)):
            tensor.copy_(part)


def _summed_bias(b_ih, b_hh) -> TorchView:
    """PyTorch's b_ih + b_hh as Keras' single bias; back: all of it into b_ih, zeros into b_hh."""
    return TorchView((b_ih, b_hh), lambda a, b: a + b, lambda v: (v, v * 0))


def _gru_blocks(x, axis: int = 0):
    """Swap the first two of three gate blocks: PyTorch's r, z, n <-> Keras' z, r, n (its own inverse)."""
    import torch
    r, z, n = x.chunk(3, dim=axis)
    return torch.cat([z, r, n], dim=axis)


def _recurrent_triples(cell: str, keras_cell, w_ih, w_hh, b_ih, b_hh) -> list:
    """The 3 triples of one layer and direction: kernel, recurrent kernel, bias(es)."""
    if cell != "gru":        # nn.RNN / nn.LSTM and SimpleRNN / LSTM: same gate order (i, f, g|c, o)
        return [(keras_cell.kernel, w_ih, True), (keras_cell.recurrent_kernel, w_hh, True),
                (keras_cell.bias, _summed_bias(b_ih, b_hh), False)]
    import torch
    kernel = lambda w: TorchView((w,), lambda a: _gru_blocks(a).T, lambda v: (_gru_blocks(v.T),))  # noqa: E731
    bias = TorchView((b_ih, b_hh), lambda a, b: torch.stack([_gru_blocks(a), _gru_blocks(b)]),
                     lambda v: (_gru_blocks(v[0]), _gru_blocks(v[1])))                          # (2, 3H)
    return [(keras_cell.kernel, kernel(w_ih), False), (keras_cell.recurrent_kernel, kernel(w_hh), False),
            (keras_cell.bias, bias, False)]


@pair("RNNCellFromScratch")
def _rnn_cell(tm, fm):
    return [(getattr(fm, n), getattr(tm, n), False) for n in ("W_xh", "W_hh", "b_h")]


@pair("RNNFromScratch")
def _rnn_scratch(tm, fm):
    return _rnn_cell(tm.cell, fm.cell)


@pair("LSTMCellFromScratch")
def _lstm_cell(tm, fm):
    return [(getattr(fm, f"{m}_{g}"), getattr(tm, f"{m}_{g}"), False) for g in "ifCo" for m in "WUb"]


@pair("LSTMFromScratch")
def _lstm_scratch(tm, fm):
    return _lstm_cell(tm.cell, fm.cell)


@pair("GRUCellFromScratch")
def _gru_cell(tm, fm):
    names = [f"{m}_{g}" for g in "zrn" for m in "WUb"] + ["b_hn"]
    return [(getattr(fm, n), getattr(tm, n), False) for n in names]


@pair("GRUFromScratch")
def _gru_scratch(tm, fm):
    return _gru_cell(tm.cell, fm.cell)


@pair("StackedRNN")
def _stacked_rnn(tm, fm):
    if tm.cell != fm.cell:
        raise ValueError(f"StackedRNN: a {tm.cell!r} PyTorch stack is no twin of a {fm.cell!r} TensorFlow one")
    lib = tm.rnn
    out = []
    for layer, keras_layer in enumerate(fm.rnn):
        directions = [keras_layer.forward_layer, keras_layer.backward_layer] if fm.directions == 2 else [keras_layer]
        for d, keras_dir in enumerate(directions):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            tensors = [getattr(lib, f"{n}{sfx}", None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if any(t is None for t in tensors):
                raise ValueError(f"StackedRNN: the PyTorch stack has no {sfx[1:]} weights: "
                                 "were both built with the same num_layers and bidirectional?")
            out += _recurrent_triples(tm.cell, keras_dir.cell, *tensors)
    return out


@pair("CharRNN")
def _char_rnn(tm, fm):
    return ([(fm.embed.embeddings, tm.embed.weight, False)] + _stacked_rnn(tm.rnn, fm.rnn)
            + [(fm.out.kernel, tm.out.weight, True), (fm.out.bias, tm.out.bias, False)])


@pair("CNNEncoder")
def _cnn_encoder(tm, fm):
    out = [(fm.embed.embeddings, tm.embed.weight, False)]
    for conv_t, conv_f in zip(tm.convs, fm.convs):   # nn.Conv1d (C, E, k) is Conv1D's (k, E, C) reversed
        out += [(conv_f.kernel, conv_t.weight, True), (conv_f.bias, conv_t.bias, False)]
    return out


# ----------------------------------------------------------------------------------------------
# Chapter 4: the encoder-decoder (library GRUs, one layer each).


def _gru_layer(keras_gru, torch_gru) -> list:
    """The triples of a one-layer `keras.layers.GRU` and its `torch.nn.GRU` twin."""
    return _recurrent_triples("gru", keras_gru.cell, torch_gru.weight_ih_l0, torch_gru.weight_hh_l0,
                              torch_gru.bias_ih_l0, torch_gru.bias_hh_l0)


def _encoder(tm, fm) -> list:
    return [(fm.embed.embeddings, tm.embed.weight, False), *_gru_layer(fm.rnn, tm.rnn)]


def _decoder(tm, fm) -> list:
    return [(fm.embed.embeddings, tm.embed.weight, False), *_gru_layer(fm.rnn, tm.rnn),
            (fm.out.kernel, tm.out.weight, True), (fm.out.bias, tm.out.bias, False)]


@pair("Seq2Seq")   # its parts are not registered: chapters 5-6 may have their own Encoder and Decoder
def _seq2seq(tm, fm):
    return [*_encoder(tm.encoder, fm.encoder), *_decoder(tm.decoder, fm.decoder)]


# ----------------------------------------------------------------------------------------------
# Chapter 5: attention and the attention encoder-decoder.


def _dense(keras_dense, torch_linear) -> list:
    out = [(keras_dense.kernel, torch_linear.weight, True)]
    return out + ([(keras_dense.bias, torch_linear.bias, False)] if torch_linear.bias is not None else [])


@pair("AdditiveAttention")
def _additive(tm, fm):
    return [*_dense(fm.W_q, tm.W_q), *_dense(fm.W_k, tm.W_k), *_dense(fm.v, tm.v)]


@pair("DotProductAttention")
def _dot(tm, fm):
    return []


@pair("GeneralAttention")
def _general(tm, fm):
    return _dense(fm.W, tm.W)


def _attention(tm, fm) -> list:
    name = type(tm).__name__
    if type(fm).__name__ != name:
        raise ValueError(f"attention scores differ: {name} (PyTorch) vs {type(fm).__name__} (TensorFlow)")
    return _PAIRS[name](tm, fm)


@pair("BidirectionalEncoder")
def _bi_encoder(tm, fm):
    return [(fm.embed.embeddings, tm.embed.weight, False), *_gru_layer(fm.fwd, tm.fwd), *_gru_layer(fm.bwd, tm.bwd)]


@pair("AttentionDecoder")
def _attention_decoder(tm, fm):
    return [(fm.embed.embeddings, tm.embed.weight, False), *_dense(fm.init, tm.init), *_gru_layer(fm.rnn, tm.rnn),
            *(_attention(tm.attention, fm.attention) if tm.attention is not None else []),
            *_dense(fm.combine, tm.combine), *_dense(fm.out, tm.out)]


@pair("Seq2SeqAttention")
def _seq2seq_attention(tm, fm):
    return [*_bi_encoder(tm.encoder, fm.encoder), *_attention_decoder(tm.decoder, fm.decoder)]

# Chapter 6: the Transformer (from-scratch layers: Linear <-> Dense, LayerNorm <-> LayerNormalization).


def _linear(dense, linear) -> list:
    return [(dense.kernel, linear.weight, True), (dense.bias, linear.bias, False)]


def _layer_norm(keras_norm, torch_norm) -> list:
    return [(keras_norm.gamma, torch_norm.weight, False), (keras_norm.beta, torch_norm.bias, False)]


@pair("MultiHeadAttention")
def _mha(tm, fm):
    return [t for n in ("W_q", "W_k", "W_v", "W_o") for t in _linear(getattr(fm, n), getattr(tm, n))]


@pair("FeedForward")
def _feed_forward(tm, fm):
    return _linear(fm.lin1, tm.lin1) + _linear(fm.lin2, tm.lin2)


@pair("PositionalEncoding")
def _positions(tm, fm):
    return [(fm.table, tm.table, False)] if tm.learned else []


@pair("EncoderLayer")
def _encoder_layer(tm, fm):
    return (_mha(tm.self_attn, fm.self_attn) + _feed_forward(tm.ff, fm.ff)
            + _layer_norm(fm.norm1, tm.norm1) + _layer_norm(fm.norm2, tm.norm2))


@pair("DecoderLayer")
def _decoder_layer(tm, fm):
    return (_mha(tm.self_attn, fm.self_attn) + _mha(tm.cross_attn, fm.cross_attn) + _feed_forward(tm.ff, fm.ff)
            + _layer_norm(fm.norm1, tm.norm1) + _layer_norm(fm.norm2, tm.norm2) + _layer_norm(fm.norm3, tm.norm3))


def _stack(tm, fm, layer_fn) -> list:
    if len(tm.layers) != len(fm.layers_):
        raise ValueError(f"{type(tm).__name__}: {len(tm.layers)} PyTorch layers but {len(fm.layers_)} TensorFlow ones")
    out = [(fm.embed.embeddings, tm.embed.weight, False), *_positions(tm.pos, fm.pos)]
    for tl, fl in zip(tm.layers, fm.layers_):
        out += layer_fn(tl, fl)
    return out + _layer_norm(fm.norm, tm.norm)


@pair("Transformer")
def _transformer(tm, fm):
    return [*_stack(tm.encoder, fm.encoder, _encoder_layer), *_stack(tm.decoder, fm.decoder, _decoder_layer)]


# ----------------------------------------------------------------------------------------------
# Chapter 7: the decoder-only GPT (blocks of chapter 6's attention and feed-forward layers).


pair("Block")(_encoder_layer)             # a GPT block is an encoder layer run causally


@pair("GPT")
def _gpt(tm, fm):
    return _stack(tm, fm, _encoder_layer)


@pair("GPTTranslator")
def _gpt_translator(tm, fm):
    return _gpt(tm.gpt, fm.gpt)


# ----------------------------------------------------------------------------------------------
# Appendix: the encoder-only classifier (chapter 6's encoder, mean pooling, a linear head).


@pair("EncoderClassifier")
def _encoder_classifier(tm, fm):
    return [*_stack(tm.encoder, fm.encoder, _encoder_layer), *_linear(fm.head, tm.head)]


# ----------------------------------------------------------------------------------------------
# Appendix: the sentence VAE (one embedding, two library GRUs, four linear maps).


@pair("SentenceVAE")
def _sentence_vae(tm, fm):
    return [(fm.embed.embeddings, tm.embed.weight, False), *_gru_layer(fm.encoder, tm.encoder),
            *_dense(fm.to_mu, tm.to_mu), *_dense(fm.to_logvar, tm.to_logvar), *_dense(fm.to_state, tm.to_state),
            *_gru_layer(fm.decoder, tm.decoder), *_dense(fm.out, tm.out)]
