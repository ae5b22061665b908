"""Training throughput of the translation model: rnnlab's Seq2Seq against the same in torch.nn.

Measured: target tokens per second of whole training steps (forward, cross-entropy over the
non-padding target positions, backward, Adam step) of :class:`rnnlab.tasks.seq2seq.Seq2Seq`
and of :class:`PlainSeq2Seq` below, an encoder-decoder of exactly the same configuration written
with ``torch.nn.LSTM/GRU/RNN``: bidirectional encoder over the padded source packed with
``pack_padded_sequence``, the decoder's initial state bridged per layer from both directions'
final states, Luong "general" attention with the source padding masked, combined output
tanh(W_u [a; h]), output layer, no input feeding. Both decoders run over the padded target.
The plain model computes the combined and output layers at every padded step and leaves the
padding out of the loss (``ignore_index``, the usual way); rnnlab's, as the translate task calls
it, computes them at the real target tokens only (``positions``), which is most of the gain on
short sentences, where the output layer over an 8000-word vocabulary is most of a step. Dropout
is 0 and both models are in train mode.

Before timing, every configuration checks that the two models are the same: the parameter counts
are equal, and with the plain model loading rnnlab's ``state_dict`` (the layers share torch.nn's
keys, ``weight_ih_l0``, ``weight_hh_l0_reverse``, ...; the other modules have the same names) the
loss and every gradient agree on the first batch.

Batches are random token ids with variable lengths, like a synthetic translation task: 64
sentences of 3-15 source words (and a second set of 10-50), targets of the source length ± 2 words
plus ``<eos>``, the decoder's inputs starting with ``<bos>``, padding id 0. Each configuration
runs ``--steps`` batches on one side, then the same batches on the other, alternating which goes
first, for ``--repeats`` rounds after one warm-up round; the table shows the median tokens per
second of each side and ``ratio`` = rnnlab / torch.nn (> 1: rnnlab is faster).

    .venv/bin/python benchmarks/translate_speed.py             # lstm, gru × 1, 2 layers × 2 lengths
    .venv/bin/python benchmarks/translate_speed.py --quick     # fewer rounds and steps
    .venv/bin/python benchmarks/translate_speed.py --cells gru --layers 2 --lengths 10-50
    .venv/bin/python benchmarks/translate_speed.py --threads 1 # one intra-op thread for both
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.nn.kernels import onednn
from rnnlab.tasks.base import ModelConfig
from rnnlab.tasks.seq2seq import Seq2Seq

PAD, BOS, EOS, FIRST_WORD = 0, 1, 2, 3
TORCH_LAYERS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class PlainSeq2Seq(nn.Module):
    """The Seq2Seq model in plain torch.nn (same module names, so rnnlab's ``state_dict`` loads)."""

    def __init__(self, config: ModelConfig, source_vocab: int, target_vocab: int) -> None:
        super().__init__()
        layer, hidden = TORCH_LAYERS[config.cell], config.hidden
        memory_size = 2 * hidden
        self.source_embedding = nn.Embedding(source_vocab, config.embedding, padding_idx=PAD)
        self.target_embedding = nn.Embedding(target_vocab, config.embedding, padding_idx=PAD)
        self.encoder = layer(config.embedding, hidden, config.layers, batch_first=True,
                             bidirectional=True)
        self.decoder = layer(config.embedding, hidden, config.layers, batch_first=True)
        self.bridge_h = nn.Linear(memory_size, hidden, bias=False)
        self.bridge_c = (nn.Linear(memory_size, hidden, bias=False) if config.cell == "lstm"
                         else None)
        self.attention = nn.Linear(memory_size, hidden, bias=False)
        self.combine = nn.Linear(memory_size + hidden, hidden, bias=False)
        self.output = nn.Linear(hidden, target_vocab, bias=False)

    def forward(self, source: Tensor, source_lengths: Tensor, target_inputs: Tensor) -> Tensor:
        batch, steps = source.shape
        packed = pack_padded_sequence(self.source_embedding(source), source_lengths,
                                      batch_first=True, enforce_sorted=False)
        packed_states, final = self.encoder(packed)
        states, _ = pad_packed_sequence(packed_states, batch_first=True, total_length=steps)

        def bridge(part: Tensor, linear: nn.Linear) -> Tensor:  # (L·2, B, H) -> (L, B, H)
            joined = part.view(-1, 2, batch, part.shape[-1]).permute(0, 2, 1, 3)
            return linear(joined.reshape(joined.shape[0], batch, -1))

        if isinstance(final, tuple):
            initial = (bridge(final[0], self.bridge_h), bridge(final[1], self.bridge_c))
        else:
            initial = bridge(final, self.bridge_h)
        decoded, _ = self.decoder(self.target_embedding(target_inputs), initial)  # (B, T, H)
        scores = decoded @ self.attention(states).transpose(1, 2)  # (B, T, S)
        valid = torch.arange(steps) < source_lengths.unsqueeze(1)  # (B, S)
        scores = scores.masked_fill(~valid.unsqueeze(1), float("-inf"))
        context = torch.softmax(scores, dim=-1) @ states  # (B, T, 2H)
        combined = torch.tanh(self.combine(torch.cat([context, decoded], dim=-1)))
        return self.output(combined)  # (B, T, V)


@dataclass
class Pairs:
    """One padded batch of sentence pairs."""

    source: Tensor  # (B, S)
    source_lengths: Tensor  # (B,)
    target_inputs: Tensor  # (B, T): <bos> w_1 ... w_n, then padding
    targets: Tensor  # (B, T): w_1 ... w_n <eos>, then padding
    target_lengths: Tensor  # (B,) n + 1

    @property
    def target_tokens(self) -> int:
        return int(self.target_lengths.sum())


def make_pairs(batch: int, shortest: int, longest: int, vocab: int,
               generator: torch.Generator) -> Pairs:
    source_lengths = torch.randint(shortest, longest + 1, (batch,), generator=generator)
    target_words = (source_lengths + torch.randint(-2, 3, (batch,), generator=generator)).clamp(1)
    target_lengths = target_words + 1
    source = torch.randint(FIRST_WORD, vocab, (batch, int(source_lengths.max())),
                           generator=generator)
    words = torch.randint(FIRST_WORD, vocab, (batch, int(target_lengths.max())),
                          generator=generator)
    positions = torch.arange(words.shape[1])
    source[positions[: source.shape[1]] >= source_lengths.unsqueeze(1)] = PAD
    targets = words.masked_fill(positions >= target_words.unsqueeze(1), PAD)
    targets[torch.arange(batch), target_words] = EOS
    target_inputs = torch.cat([torch.full((batch, 1), BOS), targets[:, :-1]], dim=1)
    target_inputs[target_inputs == EOS] = PAD  # <eos> is never an input
    return Pairs(source, source_lengths, target_inputs, targets, target_lengths)


def rnnlab_loss(model: Seq2Seq, pairs: Pairs) -> Tensor:
    """As the translate task computes it: logits at the real target tokens only."""
    real = pairs.targets != PAD
    logits = model(pairs.source, pairs.source_lengths, pairs.target_inputs, real)  # (N, V)
    return nn.functional.cross_entropy(logits, pairs.targets[real])


def plain_loss(model: PlainSeq2Seq, pairs: Pairs) -> Tensor:
    logits = model(pairs.source, pairs.source_lengths, pairs.target_inputs)
    return nn.functional.cross_entropy(logits.flatten(0, 1), pairs.targets.flatten(),
                                       ignore_index=PAD)


def check_same(ours: Seq2Seq, theirs: PlainSeq2Seq, pairs: Pairs) -> float:
    """Assert equal parameter counts and, with rnnlab's weights loaded into the plain model, equal
    losses and gradients on ``pairs``; return the loss."""
    count = sum(parameter.numel() for parameter in ours.parameters())
    assert count == sum(parameter.numel() for parameter in theirs.parameters()), "parameter counts"
    theirs.load_state_dict(ours.state_dict())
    losses = []
    for model, loss_of in ((ours, rnnlab_loss), (theirs, plain_loss)):
        model.zero_grad(set_to_none=True)
        loss = loss_of(model, pairs)
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    gradients = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, gradients[name].grad, rtol=1e-4, atol=1e-6,
                                   msg=lambda message, name=name: f"gradient of {name}: {message}")
    ours.zero_grad(set_to_none=True)
    theirs.zero_grad(set_to_none=True)
    return float(losses[0])


def trainer(model: nn.Module, loss_of: Callable[[nn.Module, Pairs], Tensor],
            batches: list[Pairs]) -> Callable[[], float]:
    """A closure training ``model`` once over ``batches``; returns the seconds it took."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run() -> float:
        start = time.perf_counter()
        for pairs in batches:
            optimizer.zero_grad(set_to_none=True)
            loss_of(model, pairs).backward()
            optimizer.step()
        return time.perf_counter() - start

    return run


def compare(config: ModelConfig, lengths: tuple[int, int], args: argparse.Namespace) -> str:
    """One table row: median target tokens/s of each side and the ratio rnnlab / torch.nn."""
    torch.manual_seed(0)
    ours = Seq2Seq(config, args.vocab, args.vocab, pad_id=PAD).train()
    theirs = PlainSeq2Seq(config, args.vocab, args.vocab).train()
    generator = torch.Generator().manual_seed(0)
    batches = [make_pairs(args.batch, *lengths, args.vocab, generator) for _ in range(args.steps)]
    loss = check_same(ours, theirs, batches[0])
    tokens = sum(pairs.target_tokens for pairs in batches)
    ours_run, theirs_run = trainer(ours, rnnlab_loss, batches), trainer(theirs, plain_loss, batches)
    ours_run(), theirs_run()  # warm-up: allocator, primitive caches
    ours_rates, theirs_rates = [], []
    for round_index in range(args.repeats):  # alternating: load changes hit both sides alike
        if round_index % 2 == 0:
            ours_rates.append(tokens / ours_run())
            theirs_rates.append(tokens / theirs_run())
        else:
            theirs_rates.append(tokens / theirs_run())
            ours_rates.append(tokens / ours_run())
    ours_rate, theirs_rate = statistics.median(ours_rates), statistics.median(theirs_rates)
    name = (f"{config.cell} L={config.layers} H={config.hidden} E={config.embedding} "
            f"B={args.batch} src {lengths[0]}-{lengths[1]}")
    return (f"| {name} | {loss:6.3f} | {ours_rate:9.0f} | {theirs_rate:9.0f} | "
            f"{ours_rate / theirs_rate:5.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru", help="comma-separated: lstm, gru, rnn")
    parser.add_argument("--layers", default="1,2", help="comma-separated layer counts")
    parser.add_argument("--lengths", default="3-15,10-50",
                        help="comma-separated source length ranges, in words")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embedding", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=8000, help="size of both vocabularies")
    parser.add_argument("--steps", type=int, default=6, help="training steps per timed round")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per side")
    parser.add_argument("--quick", action="store_true", help="--steps 2 --repeats 3")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch intra-op threads, for both sides (default: torch's choice)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 2, 3
    torch.set_num_threads(args.threads)
    ranges = [tuple(int(end) for end in text.split("-")) for text in args.lengths.split(",")]
    print(f"# rnnlab {rnnlab.__version__}, torch {torch.__version__}, {platform.machine()} "
          f"{torch.get_num_threads()} threads; compiled backend: {onednn.status().reason}")
    print(f"# training steps (fwd + loss + bwd + Adam), bidirectional encoder, vocab "
          f"{args.vocab}; median target tokens/s over {args.repeats} rounds of {args.steps} steps")
    print("| configuration | loss at init | rnnlab tok/s | torch.nn tok/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for shortest, longest in ranges:
        for cell in args.cells.split(","):
            for layers in (int(count) for count in args.layers.split(",")):
                config = ModelConfig(cell=cell, layers=layers, hidden=args.hidden,
                                     embedding=args.embedding, bidirectional=True, dropout=0.0)
                print(compare(config, (shortest, longest), args), flush=True)


if __name__ == "__main__":
    main()
