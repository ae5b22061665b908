"""``rnnlab translate RUN_DIR [--data FILE]``: translate sentences with a trained run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnnlab.cli._parser import positive_int
from rnnlab.errors import DataError
from rnnlab.tasks.text import read_text
from rnnlab.tasks.translate import TranslateTask
from rnnlab.training import load_run

NAME = "translate"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab translate`` to the top-level parser."""
    parser = subparsers.add_parser(
        NAME,
        help="translate sentences with a trained translation run",
        description="Translate every non-blank line of FILE (or of standard input) with the "
        "encoder-decoder of a run directory (a run of `rnnlab train translate`) and print one "
        "translation per line, in the order given. A line with a tab is a source<TAB>target "
        "pair: its source is translated.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="a run directory of `rnnlab train translate`")
    parser.add_argument("--data", metavar="FILE",
                        help="sentences to translate (default: standard input, one per line)")
    parser.add_argument("--beam-size", type=positive_int, default=None, metavar="K",
                        help="beam search width; 1 decodes greedily (default: the run's)")
    parser.add_argument("--attention", metavar="DIR",
                        help="also draw each sentence's attention map as DIR/attention-N.png "
                        "(N: the sentence's number); existing files are never overwritten")
    parser.add_argument("--unknown", choices=("error", "map"), default="error",
                        help="source tokens the run's vocabulary lacks: stop with an error "
                        "naming them, or read them as <unk> with a warning (default: error)")
    parser.add_argument("--format", choices=("text", "jsonl"), default="text",
                        help="output: one translation per line, or JSON lines with the source, "
                        "score and unknown tokens (default: text)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which weights to use (default: best)")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="B",
                        help="sentences decoded together (default: 64)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="where to run the model (default: cpu)")
    parser.set_defaults(func=run)


def read_sentences(data: str | None) -> list[str]:
    """The non-blank lines of FILE or of standard input; a line with a tab gives its source
    (the text before the tab)."""
    text = sys.stdin.read() if data is None else read_text(data)
    sentences = [line.split("\t", 1)[0].strip() for line in text.splitlines()]
    sentences = [sentence for sentence in sentences if sentence]
    if not sentences:
        raise DataError(f"no sentence to translate in {data or 'standard input'}")
    return sentences


def attention_paths(directory: str, count: int) -> list[Path]:
    """DIR/attention-N.png for N = 1..count (N padded to a common width); DataError when DIR is
    a file or one of those files exists already."""
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"--attention {folder} is a file, not a directory")
    width = max(4, len(str(count)))
    paths = [folder / f"attention-{number:0{width}d}.png" for number in range(1, count + 1)]
    existing = [path for path in paths if path.exists()]
    if existing:
        raise DataError(f"{existing[0]} exists already ({len(existing)} of the attention maps "
                        "would be overwritten): choose another --attention directory")
    return paths


def check_unknown(unknown: list[list[str]], policy: str) -> None:
    """Stop (``error``) or warn (``map``) when source tokens are not in the run's vocabulary
    (``unknown``: each sentence's unknown tokens)."""
    lines = [(number, tokens) for number, tokens in enumerate(unknown, start=1) if tokens]
    if not lines:
        return
    number, tokens = lines[0]
    shown = ", ".join(repr(token) for token in tokens[:5])
    total = sum(len(tokens) for _, tokens in lines)
    if policy == "error":
        raise DataError(f"sentence {number} has tokens the run's vocabulary lacks ({shown}); "
                        f"{total} in {len(lines)} sentence(s) in all: --unknown map reads "
                        "them as <unk>")
    print(f"warning: {total} source token(s) in {len(lines)} sentence(s) are not in the run's "
          f"vocabulary and were read as <unk> (sentence {number}: {shown})", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Print one translation per sentence; returns the exit code."""
    loaded = load_run(args.run_dir, which=args.checkpoint, device=args.device, read_data=False)
    task = loaded.task
    if not isinstance(task, TranslateTask):
        raise ValueError(f"{args.run_dir} is a run of task {task.name!r}; translate needs a run "
                         "of `rnnlab train translate`")
    sentences = read_sentences(args.data)
    paths = attention_paths(args.attention, len(sentences)) if args.attention else None
    # unknown tokens are found before decoding: nothing is decoded for nothing
    encoded = [task.encode_source(sentence) for sentence in sentences]
    check_unknown([unknown for _, _, unknown in encoded], args.unknown)
    beam_size = args.beam_size or task.beam_size
    translations = task.translate(loaded.model, sentences, beam_size=beam_size,
                                  batch_size=args.batch_size)
    for item in translations:
        if args.format == "jsonl":
            print(json.dumps({"source": item.source, "translation": item.text,
                              "score": item.score, "unknown": item.unknown}, ensure_ascii=False))
        else:
            print(item.text)
    if paths is not None:
        from rnnlab.diagnostics.plots import plot_attention

        for number, (item, path) in enumerate(zip(translations, paths), start=1):
            plot_attention(item.attention, item.source_tokens, item.tokens, path=path,
                           title=f"{number}: {item.source[:80]}")
        print(f"attention maps: {paths[0].parent}/attention-*.png ({len(paths)})",
              file=sys.stderr)
    return 0
