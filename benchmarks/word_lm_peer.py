"""Word-level language modelling: `rnnlab train lm` against pytorch/examples' word_language_model.

The peer program is run from a path you give (a checkout of pytorch/examples'
``word_language_model`` directory; nothing of it is copied here), on the same files and the same
configuration: 2-layer LSTM with 200 hidden units and a 200-dimensional embedding, BPTT 35, batch
20, SGD at lr 20 divided by 4 when validation stalls, gradient clipping at 0.25, dropout 0.2 —
the peer's defaults, which are also `rnnlab train lm`'s.

So that both programs see identical token streams and vocabularies, the data is prepared once:
the first ``--train-lines`` non-blank lines of train.txt and the first ``--heldout-lines`` of
valid.txt and test.txt (the peer turns a blank line into an extra ``<eos>``; rnnlab skips blank
lines), with held-out words that are not in the training lines written as ``<unk>`` (the peer's
vocabulary comes from all three files, rnnlab's from train only).

Printed: training tokens per second of each program (from their logs, the first logging
interval left out as warm-up), the wall-clock and CPU time of each whole run (evaluation
included), the validation perplexity after every epoch and the final test perplexity, and the
ratios rnnlab / peer.

    .venv/bin/python benchmarks/word_lm_peer.py --peer PATH/word_language_model \\
        --data PATH/wikitext-2 [--epochs 1] [--train-lines 2000] [--heldout-lines 200] \\
        [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH, BPTT, LOG_EVERY = 20, 35, 50


def non_blank_lines(path: Path, count: int) -> list[str]:
    """The first ``count`` lines of ``path`` that hold a word, without their line ends."""
    lines = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.split():
                lines.append(line.rstrip("\n"))
                if len(lines) == count:
                    break
    return lines


def prepare(data: Path, out: Path, train_lines: int, heldout_lines: int) -> dict[str, int]:
    """Write train/valid/test.txt into ``out`` (see the module docstring); returns token counts
    with one ``<eos>`` per line, as both programs count them."""
    train = non_blank_lines(data / "train.txt", train_lines)
    known = {word for line in train for word in line.split()}
    splits = {"train": train}
    for split in ("valid", "test"):
        splits[split] = [" ".join(word if word in known else "<unk>" for word in line.split())
                         for line in non_blank_lines(data / f"{split}.txt", heldout_lines)]
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, lines in splits.items():
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[split] = sum(len(line.split()) + 1 for line in lines)
    return counts


def timed(command: list[str], cwd: Path | None = None) -> tuple[str, float, float]:
    """(stdout + stderr, wall seconds, CPU seconds of the child) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        sys.exit(f"{command[0]} ... failed ({completed.returncode}):\n{output[-2000:]}")
    return output, wall, cpu


def run_peer(peer: Path, data: Path, epochs: int, seed: int, work: Path) -> dict[str, object]:
    """The peer program's training tokens/s, per-epoch valid perplexity and test perplexity."""
    output, wall, cpu = timed([
        sys.executable, str(peer / "main.py"), "--data", str(data), "--epochs", str(epochs),
        "--seed", str(seed), "--log-interval", str(LOG_EVERY), "--save", str(work / "peer.pt"),
    ], cwd=peer)
    ms_per_batch = [float(value) for value in re.findall(r"ms/batch\s+([\d.]+)", output)]
    valid = [float(value) for value in re.findall(r"end of epoch.*valid ppl\s+([\d.]+)", output)]
    test = re.findall(r"End of training.*test ppl\s+([\d.]+)", output)
    timed_batches = ms_per_batch[1:] or ms_per_batch  # the first interval is warm-up
    if not timed_batches or not test:
        sys.exit(f"could not read the peer's log:\n{output[-2000:]}")
    seconds_per_batch = sum(timed_batches) / len(timed_batches) / 1000.0
    return {"tokens_per_second": BATCH * BPTT / seconds_per_batch, "valid_perplexity": valid,
            "test_perplexity": float(test[-1]), "wall_s": wall, "cpu_s": cpu}


def run_rnnlab(data: Path, epochs: int, seed: int, work: Path) -> dict[str, object]:
    """`rnnlab train lm` with its defaults (the peer's configuration) on the same files."""
    run_dir = work / "rnnlab-run"
    _, wall, cpu = timed([
        sys.executable, "-m", "rnnlab", "train", "lm", "--data", str(data), "--epochs",
        str(epochs), "--seed", str(seed), "--log-every", str(LOG_EVERY), "--device", "cpu",
        "--quiet", "--out", str(run_dir),
    ])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [row["tokens_per_second"] for row in rows
             if row.get("split") == "train" and row["step"] % LOG_EVERY == 0][1:]
    results = json.loads((run_dir / "results.json").read_text())
    # equal windows: total tokens over total time is the harmonic mean of the window rates
    return {"tokens_per_second": len(rates) / sum(1.0 / rate for rate in rates),
            "valid_perplexity": [row["valid_perplexity"] for row in rows
                                 if row.get("split") == "valid"],
            "test_perplexity": results["test_perplexity"], "wall_s": wall, "cpu_s": cpu}


def best_of(rounds: list[dict[str, object]]) -> dict[str, object]:
    """The first round's perplexities with the best throughput and times of all rounds."""
    best = dict(rounds[0])
    best["tokens_per_second"] = max(run["tokens_per_second"] for run in rounds)
    for key in ("wall_s", "cpu_s"):
        best[key] = min(run[key] for run in rounds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", type=Path, required=True,
                        help="the word_language_model directory of pytorch/examples")
    parser.add_argument("--data", type=Path, required=True,
                        help="a directory with train.txt, valid.txt and test.txt (WikiText-2)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-lines", type=int, default=2000)
    parser.add_argument("--heldout-lines", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run both programs this many times, alternating; the best "
                        "throughput and time of each counts (perplexities are the same)")
    args = parser.parse_args()
    if not (args.peer / "main.py").is_file():
        sys.exit(f"{args.peer} has no main.py: give the word_language_model directory")
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        counts = prepare(args.data, work / "data", args.train_lines, args.heldout_lines)
        print(f"data: {counts['train']:,} training tokens, {counts['valid']:,} valid, "
              f"{counts['test']:,} test; {args.epochs} epoch(s); torch threads "
              f"{os.environ.get('OMP_NUM_THREADS', 'default')}", flush=True)
        peer_rounds, our_rounds = [], []
        for _ in range(args.rounds):
            peer_rounds.append(run_peer(args.peer.resolve(), work / "data", args.epochs,
                                        args.seed, work))
            our_rounds.append(run_rnnlab(work / "data", args.epochs, args.seed, work))
            shutil.rmtree(work / "rnnlab-run")
    peer, ours = best_of(peer_rounds), best_of(our_rounds)
    print("train tokens/s by round: peer "
          + ", ".join(f"{run['tokens_per_second']:.0f}" for run in peer_rounds) + "; rnnlab "
          + ", ".join(f"{run['tokens_per_second']:.0f}" for run in our_rounds))
    print(f"{'':<24}{'peer':>12}{'rnnlab':>12}{'rnnlab/peer':>13}")
    for key, label in (("tokens_per_second", "train tokens/s"), ("wall_s", "wall s (whole run)"),
                       ("cpu_s", "CPU s (whole run)"), ("test_perplexity", "test perplexity")):
        print(f"{label:<24}{peer[key]:>12.1f}{ours[key]:>12.1f}{ours[key] / peer[key]:>13.3f}")
    for epoch, (theirs, mine) in enumerate(zip(peer["valid_perplexity"],
                                               ours["valid_perplexity"]), start=1):
        print(f"{f'valid perplexity, epoch {epoch}':<24}{theirs:>12.1f}{mine:>12.1f}"
              f"{mine / theirs:>13.3f}")


if __name__ == "__main__":
    main()
