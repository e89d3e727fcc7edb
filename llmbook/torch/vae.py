"""A sequence VAE (Bowman et al., 2016): a GRU encoder to q(z | x), the reparameterisation trick, a GRU decoder given z.

Shapes: B batch, S sentence length (encoder input, padded), T decoder length (S + 1), E embedding
size, H hidden units, Z latent size, V vocabulary.

    h_S = GRU_enc(emb(x))  at the last real token            (B, H)
    mu = W_mu h_S + b,  log sigma^2 = W_s h_S + b            q(z | x) = N(mu, diag sigma^2), (B, Z) each
    z = mu + sigma * eps,  eps ~ N(0, I)                     the reparameterisation trick (Kingma and Welling, 2014)
    s_0 = W_z z + b,  s_t = GRU_dec([emb(y_{t-1}); z], s_{t-1})
    p(y_t | y_<t, z) = softmax(W_o s_t + b)                  (B, T, V)

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || N(0, I))
    KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)

One embedding table serves the encoder and the decoder. With eps given, everything is
deterministic, which is what the parity test needs; with eps None the model samples it in training
and uses z = mu in evaluation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmbook.torch.seq2seq import source_lengths


class SentenceVAE(nn.Module):
    """Sentence -> GRU encoder -> (mu, log sigma^2) -> z -> GRU decoder that sees z at every step -> logits."""

    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden_dim: int = 256, latent_dim: int = 16,
                 pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.encoder = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)
        self.to_state = nn.Linear(latent_dim, hidden_dim)
        self.decoder = nn.GRU(embed_dim + latent_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentence ids (B, S), right-padded -> mu (B, Z) and log sigma^2 (B, Z) of q(z | x)."""
        lengths = source_lengths(src, self.pad_id)                         # (B,)
        states, _ = self.encoder(self.embed(src))                          # (B, S, E) -> (B, S, H)
        h = states[torch.arange(src.shape[0], device=src.device), lengths - 1]  # (B, H)
        return self.to_mu(h), self.to_logvar(h)                            # (B, Z), (B, Z)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps with sigma = exp(log sigma^2 / 2): a sample of q(z | x) that gradients pass through."""
        return mu + torch.exp(0.5 * logvar) * eps                          # (B, Z)

    def decode(self, dec_in: torch.Tensor, z: torch.Tensor,
               state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder inputs (B, T), z (B, Z), state (B, H) or None (= W_z z + b) -> logits (B, T, V), last state (B, H)."""
        zs = z.unsqueeze(1).expand(-1, dec_in.shape[1], -1)                # (B, Z) -> (B, T, Z)
        s0 = self.to_state(z) if state is None else state                  # (B, H)
        x = torch.cat([self.embed(dec_in), zs], dim=-1)                    # (B, T, E + Z)
        states, last = self.decoder(x, s0.unsqueeze(0))                    # (B, T, H), (1, B, H)
        return self.out(states), last[0]                                   # (B, T, V), (B, H)

    def forward(self, src: torch.Tensor, dec_in: torch.Tensor,
                eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sentences (B, S), decoder inputs (B, T), noise (B, Z) or None -> logits (B, T, V), mu (B, Z), log sigma^2 (B, Z)."""
        mu, logvar = self.encode(src)                                      # (B, Z), (B, Z)
        if eps is None:
            eps = torch.randn_like(mu) if self.training else torch.zeros_like(mu)  # (B, Z)
        z = self.reparameterize(mu, logvar, eps)                           # (B, Z)
        logits, _ = self.decode(dec_in, z)                                 # (B, T, V)
        return logits, mu, logvar

    @torch.no_grad()
    def decode_greedy(self, z: torch.Tensor, bos_id: int, eos_id: int, max_len: int = 20) -> torch.Tensor:
        """Greedy sentences from latent codes z (B, Z) -> ids (B, max_len), <pad> after each row's <eos>."""
        prev = torch.full((z.shape[0], 1), bos_id, dtype=torch.long, device=z.device)  # (B, 1)
        state, out = None, []
        done = torch.zeros(z.shape[0], dtype=torch.bool, device=z.device)  # (B,)
        for _ in range(max_len):
            logits, state = self.decode(prev, z, state)                    # (B, 1, V), (B, H)
            prev = logits.argmax(-1)                                       # (B, 1)
            out.append(prev[:, 0].masked_fill(done, self.pad_id))          # (B,)
            done |= prev[:, 0] == eos_id
            if bool(done.all()):
                break
        ids = torch.stack(out, dim=1)                                      # (B, <= max_len)
        return F.pad(ids, (0, max_len - ids.shape[1]), value=self.pad_id)  # (B, max_len)


def elbo_terms(logits: torch.Tensor, targets: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
               pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstruction NLL -log p(x | z) and KL(q(z | x) || N(0, I)), each summed over a sentence, averaged over the batch (nats)."""
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, V, T) vs (B, T) -> (B, T)
    nll = (nll * (targets != pad_id).to(nll.dtype)).sum(1)                 # (B,)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)            # (B,)
    return nll.mean(), kl.mean()


def kl_weight(step: int, warmup: int) -> float:
    """KL annealing (Bowman et al., 2016): the weight of the KL term rises linearly from 0 at step 0 to 1 at `warmup`."""
    if warmup <= 0:
        return 1.0
    return float(min(1.0, max(0.0, step / warmup)))

