"""A sequence VAE (Bowman et al., 2016): a GRU encoder to q(z | x), the reparameterisation trick, a GRU decoder given z.

Twin of `llmbook.torch.vae` (same class and function names, same arguments). Shapes: B batch,
S sentence length (encoder input, padded), T decoder length (S + 1), E embedding size, H hidden
units, Z latent size, V vocabulary.

    h_S = GRU_enc(emb(x))  at the last real token            (B, H)
    mu = W_mu h_S + b,  log sigma^2 = W_s h_S + b            q(z | x) = N(mu, diag sigma^2), (B, Z) each
    z = mu + sigma * eps,  eps ~ N(0, I)                     the reparameterisation trick (Kingma and Welling, 2014)
    s_0 = W_z z + b,  s_t = GRU_dec([emb(y_{t-1}); z], s_{t-1})
    p(y_t | y_<t, z) = softmax(W_o s_t + b)                  (B, T, V)

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || N(0, I))
    KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)

`keras.layers.GRU` (reset_after=True, the default) is the cell of `torch.nn.GRU`; `llmbook.parity`
reorders the gate blocks.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from llmbook.tf.seq2seq import source_lengths


class SentenceVAE(keras.Model):
    """Sentence -> GRU encoder -> (mu, log sigma^2) -> z -> GRU decoder that sees z at every step -> logits."""

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden_dim: int = 256, latent_dim: int = 16,
                 pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.embed = keras.layers.Embedding(vocab_size, embed_dim)
        self.encoder = keras.layers.GRU(hidden_dim, return_sequences=True)
        self.to_mu = keras.layers.Dense(latent_dim)
        self.to_logvar = keras.layers.Dense(latent_dim)
        self.to_state = keras.layers.Dense(hidden_dim)
        self.decoder = keras.layers.GRU(hidden_dim, return_sequences=True, return_state=True)
        self.out = keras.layers.Dense(vocab_size)
        self.embed.build((None, None))
        self.encoder.build((None, None, embed_dim))
        self.to_mu.build((None, hidden_dim))
        self.to_logvar.build((None, hidden_dim))
        self.to_state.build((None, latent_dim))
        self.decoder.build((None, None, embed_dim + latent_dim))
        self.out.build((None, hidden_dim))
        self.built = True

    def encode(self, src):
        """Sentence ids (B, S), right-padded -> mu (B, Z) and log sigma^2 (B, Z) of q(z | x)."""
        src = tf.convert_to_tensor(src)                                    # (B, S)
        lengths = source_lengths(src, self.pad_id)                         # (B,)
        states = self.encoder(self.embed(src))                             # (B, S, E) -> (B, S, H)
        h = tf.gather(states, lengths - 1, batch_dims=1)                   # (B, H)
        return self.to_mu(h), self.to_logvar(h)                            # (B, Z), (B, Z)

    @staticmethod
    def reparameterize(mu, logvar, eps):
        """z = mu + sigma * eps with sigma = exp(log sigma^2 / 2): a sample of q(z | x) that gradients pass through."""
        return mu + tf.exp(0.5 * logvar) * tf.cast(eps, mu.dtype)          # (B, Z)

    def decode(self, dec_in, z, state=None):
        """Decoder inputs (B, T), z (B, Z), state (B, H) or None (= W_z z + b) -> logits (B, T, V), last state (B, H)."""
        dec_in = tf.convert_to_tensor(dec_in)                              # (B, T)
        B, T = tf.shape(dec_in)[0], tf.shape(dec_in)[1]
        zs = tf.broadcast_to(z[:, None, :], [B, T, z.shape[-1]])           # (B, Z) -> (B, T, Z)
        s0 = self.to_state(z) if state is None else state                  # (B, H)
        x = tf.concat([self.embed(dec_in), zs], axis=-1)                   # (B, T, E + Z)
        states, last = self.decoder(x, initial_state=[s0])                 # (B, T, H), (B, H)
        return self.out(states), last                                      # (B, T, V), (B, H)

    def call(self, src, dec_in, eps=None, training: bool = False):
        """Sentences (B, S), decoder inputs (B, T), noise (B, Z) or None -> logits (B, T, V), mu (B, Z), log sigma^2 (B, Z)."""
        mu, logvar = self.encode(src)                                      # (B, Z), (B, Z)
        if eps is None:
            eps = tf.random.normal(tf.shape(mu)) if training else tf.zeros_like(mu)  # (B, Z)
        z = self.reparameterize(mu, logvar, eps)                           # (B, Z)
        logits, _ = self.decode(dec_in, z)                                 # (B, T, V)
        return logits, mu, logvar

    def decode_greedy(self, z, bos_id: int, eos_id: int, max_len: int = 20):
        """Greedy sentences from latent codes z (B, Z) -> ids (B, max_len), <pad> after each row's <eos>."""
        z = tf.convert_to_tensor(z, tf.float32)                            # (B, Z)
        prev = tf.fill([tf.shape(z)[0], 1], tf.constant(bos_id, tf.int64))  # (B, 1)
        state, out = None, []
        done = tf.zeros([tf.shape(z)[0]], tf.bool)                         # (B,)
        for _ in range(max_len):
            logits, state = self.decode(prev, z, state)                    # (B, 1, V), (B, H)
            prev = tf.argmax(logits, -1)                                   # (B, 1)
            out.append(tf.where(done, tf.cast(self.pad_id, tf.int64), prev[:, 0]))  # (B,)
            done = done | (prev[:, 0] == eos_id)
            if bool(tf.reduce_all(done)):
                break
        ids = tf.stack(out, axis=1)                                        # (B, <= max_len)
        return tf.pad(ids, [[0, 0], [0, max_len - len(out)]], constant_values=self.pad_id)  # (B, max_len)


def elbo_terms(logits, targets, mu, logvar, pad_id: int = 0):
    """Reconstruction NLL -log p(x | z) and KL(q(z | x) || N(0, I)), each summed over a sentence, averaged over the batch (nats)."""
    targets = tf.convert_to_tensor(targets)                                # (B, T)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)  # (B, T)
    nll = tf.reduce_sum(nll * tf.cast(targets != pad_id, nll.dtype), 1)    # (B,)
    kl = 0.5 * tf.reduce_sum(tf.square(mu) + tf.exp(logvar) - 1.0 - logvar, 1)  # (B,)
    return tf.reduce_mean(nll), tf.reduce_mean(kl)


def kl_weight(step: int, warmup: int) -> float:
    """KL annealing (Bowman et al., 2016): the weight of the KL term rises linearly from 0 at step 0 to 1 at `warmup`."""
    if warmup <= 0:
        return 1.0
    return float(min(1.0, max(0.0, step / warmup)))
