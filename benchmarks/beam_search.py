"""Batched beam search against decoding the same sentences one at a time, in the same run.

    .venv/bin/python benchmarks/beam_search.py [--sentences 64] [--beam-size 5]

Both decode the same source sentences with the same :class:`rnnlab.tasks.seq2seq.Seq2Seq`
(2-layer bidirectional LSTM encoder, hidden 256, embedding 256, vocabularies of 8000, sources of
10-30 tokens, 60 target tokens at most). An untrained model rarely emits ``<eos>``, so every
hypothesis runs to the length limit in both methods, which makes the work equal. Prints the best
of ``--repeats`` times and the ratio; checks that both return the same translations. The target
of issue 14: batched at least 5x faster.
"""

from __future__ import annotations

import argparse
import time

import torch

from rnnlab.tasks.base import ModelConfig
from rnnlab.tasks.seq2seq import Seq2Seq, beam_search

PAD, BOS, EOS = 0, 1, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = ModelConfig(cell="lstm", layers=2, hidden=256, embedding=256, bidirectional=True)
    model = Seq2Seq(config, 8000, 8000, pad_id=PAD).eval()
    lengths = torch.randint(10, 31, (args.sentences,))
    source = torch.full((args.sentences, int(lengths.max())), PAD, dtype=torch.long)
    for row, length in enumerate(lengths.tolist()):
        source[row, :length] = torch.randint(3, 8000, (length,))
    options = {"bos_id": BOS, "eos_id": EOS, "beam_size": args.beam_size,
               "max_length": args.max_length}

    def batched() -> list[list[int]]:
        return beam_search(model, source, lengths, **options).tokens

    def one_at_a_time() -> list[list[int]]:
        return [beam_search(model, source[row : row + 1, : int(lengths[row])],
                            lengths[row : row + 1], **options).tokens[0]
                for row in range(args.sentences)]

    results, times = {}, {}
    for name, method in (("batched", batched), ("one at a time", one_at_a_time)):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            results[name] = method()
            best = min(best, time.perf_counter() - start)
        times[name] = best
    same = results["batched"] == results["one at a time"]
    print(f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads: {args.sentences} sentences, beam {args.beam_size}, "
          f"up to {args.max_length} tokens; best of {args.repeats}")
    for name, seconds in times.items():
        print(f"{name:14s} {seconds:8.2f} s  {args.sentences / seconds:8.1f} sentences/s")
    print(f"batched is {times['one at a time'] / times['batched']:.1f}x faster (target ≥ 5x); "
          f"same translations: {same}")


if __name__ == "__main__":
    main()
