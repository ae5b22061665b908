"""Training throughput: `rnnlab train lm` against a plain PyTorch loop with torch.nn.LSTM.

Both train the same configuration (2 layers, 200 hidden, 200-dimensional embedding, BPTT 35,
batch 20, SGD lr 1 with gradient clipping at 5) on the same generated corpus, in the same process,
on the same batches. rnnlab is timed through `rnnlab.training.train`, the library call the CLI
makes (metrics logging, clipping statistics, the NaN guard and checkpoints included); the
baseline is the shortest loop that trains the same model. Prints tokens per second and the ratio.

    .venv/bin/python benchmarks/training.py [--steps 40] [--warmup 5] [--vocab 10000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from rnnlab.tasks import detach_carry
from rnnlab.training import Callback, TrainConfig, build_task, train

LAYERS, HIDDEN, BPTT, BATCH = 2, 200, 35, 20


def write_corpus(path: Path, tokens: int, vocabulary: int, seed: int = 0) -> None:
    """Lines of 5-25 words drawn from a Zipf-like distribution over ``vocabulary`` word types."""
    generator = random.Random(seed)
    words = [f"w{index}" for index in range(vocabulary)]
    weights = [1.0 / (rank + 1) for rank in range(vocabulary)]
    drawn = generator.choices(words, weights=weights, k=tokens)
    lines, position = [], 0
    while position < len(drawn):
        length = generator.randint(5, 25)
        lines.append(" ".join(drawn[position : position + length]))
        position += length
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Timer(Callback):
    """Wall time from the end of the warm-up steps to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.started = 0.0
        self.finished = 0.0

    def on_step_end(self, trainer, step: int) -> None:
        if step + 1 == self.warmup:
            self.started = time.perf_counter()
        self.finished = time.perf_counter()


class PlainLanguageModel(nn.Module):
    """Embedding → torch.nn.LSTM → linear softmax layer: the baseline model."""

    def __init__(self, vocabulary: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, HIDDEN)
        self.lstm = nn.LSTM(HIDDEN, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.decoder = nn.Linear(HIDDEN, vocabulary)

    def forward(self, tokens: torch.Tensor, state=None):
        outputs, state = self.lstm(self.embedding(tokens), state)  # (B, T, H)
        return self.decoder(outputs), state  # (B, T, V)


def plain_loop(task, vocabulary: int, steps: int, warmup: int) -> float:
    """Tokens per second of the shortest training loop of the same model on the same batches."""
    torch.manual_seed(0)
    model = PlainLanguageModel(vocabulary)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    batches = [task.train_batch(step, BATCH) for step in range(warmup + steps)]
    state = None
    started = 0.0
    for step, batch in enumerate(batches):
        if step == warmup:
            started = time.perf_counter()
        logits, state = model(batch.inputs, state)
        state = detach_carry(state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           batch.targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    return steps * BATCH * BPTT / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--tokens", type=int, default=200_000, help="corpus size")
    parser.add_argument("--vocab", type=int, default=10_000, help="word types in the corpus")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate the two sides this many times; the best rate counts")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        corpus = Path(directory) / "corpus.txt"
        write_corpus(corpus, args.tokens, args.vocab)
        config = TrainConfig(
            task="lm", data=str(corpus), seq_len=BPTT, batch_size=BATCH,
            model={"cell": "lstm", "layers": LAYERS, "hidden": HIDDEN, "embedding": HIDDEN},
            optimizer="sgd", lr=1.0, clip=5.0, steps=args.warmup + args.steps,
            eval_every=10**9, log_every=10, device="cpu",
        )
        task = build_task(config)
        rnnlab_rates, baseline_rates = [], []
        for _ in range(args.rounds):  # alternating evens out the load of a shared machine
            timer = Timer(args.warmup)
            result = train(config, None, task=task, callbacks=[timer])
            rnnlab_rates.append(args.steps * BATCH * BPTT / (timer.finished - timer.started))
            embedding = next(m for m in result.model.modules() if isinstance(m, nn.Embedding))
            baseline_rates.append(plain_loop(task, embedding.num_embeddings, args.steps,
                                             args.warmup))
        rnnlab_rate, baseline_rate = max(rnnlab_rates), max(baseline_rates)

    print(f"lm: {LAYERS} layers, {HIDDEN} hidden, BPTT {BPTT}, batch {BATCH}, "
          f"{args.tokens} tokens, {args.vocab} word types, {args.steps} timed steps, "
          f"{torch.get_num_threads()} threads")
    print(f"{'loop':<28}{'tokens/s':>12}")
    print(f"{'rnnlab train lm':<28}{rnnlab_rate:>12.0f}   rounds: "
          + ", ".join(f"{rate:.0f}" for rate in rnnlab_rates))
    print(f"{'plain torch.nn.LSTM loop':<28}{baseline_rate:>12.0f}   rounds: "
          + ", ".join(f"{rate:.0f}" for rate in baseline_rates))
    ratio = rnnlab_rate / baseline_rate
    print(f"ratio rnnlab / plain: {ratio:.2f}x (target >= 1.0x)")


if __name__ == "__main__":
    main()
