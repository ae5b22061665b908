"""``rnnlab translate RUN_DIR [--data FILE]``: translate sentences with a trained run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnnlab.cli._parser import positive_int
from rnnlab.errors import DataError
from rnnlab.tasks.text import decode_text, read_text
from rnnlab.tasks.translate import TranslateTask
from rnnlab.training import load_run

NAME = "translate"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab translate`` to the top-level parser."""
    parser = subparsers.add_parser(
        NAME,
        help="translate sentences with a trained translation run",
        description="Translate every line of FILE (or of standard input) with the "
        "encoder-decoder of a run directory (a run of `rnnlab train translate`) and print one "
        "line per input line, in order: its translation, or a blank line for a blank one. A "
        "line with a tab is a source<TAB>target pair: its source is translated.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="a run directory of `rnnlab train translate`")
    parser.add_argument("--data", metavar="FILE",
                        help="sentences to translate (default: standard input, one per line)")
    parser.add_argument("--beam-size", type=positive_int, default=None, metavar="K",
                        help="beam search width; 1 decodes greedily (default: the run's)")
    parser.add_argument("--attention", metavar="DIR",
                        help="also draw each sentence's attention map as DIR/attention-N.png "
                        "(N: its line number); existing files are never overwritten")
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


def read_sources(data: str | None) -> list[str]:
    """The source sentence of every line of FILE or of standard input, "" for a blank line (a
    line with a tab gives the text before it). Lines end at \\n only, so that the output lines
    match the input lines one for one."""
    if data is None:  # bytes, so that a non-UTF-8 input is refused, not misread
        raw = getattr(sys.stdin, "buffer", None)
        text = decode_text(raw.read(), "standard input") if raw else sys.stdin.read()
    else:
        text = read_text(data)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    sources = [line.rstrip("\r").split("\t", 1)[0].strip() for line in lines]
    if not any(sources):
        raise DataError(f"no sentence to translate in {data or 'standard input'}")
    return sources


def attention_paths(directory: str, numbers: list[int], count: int) -> list[Path]:
    """DIR/attention-N.png for the line numbers N given (padded to the width of ``count``);
    DataError when DIR is a file or one of those files exists already."""
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"--attention {folder} is a file, not a directory")
    width = max(4, len(str(count)))
    paths = [folder / f"attention-{number:0{width}d}.png" for number in numbers]
    existing = [path for path in paths if path.exists()]
    if existing:
        raise DataError(f"{existing[0]} exists already ({len(existing)} of the attention maps "
                        "would be overwritten): choose another --attention directory")
    return paths


def check_unknown(unknown: dict[int, list[str]], policy: str) -> None:
    """Stop (``error``) or warn (``map``) when source tokens are not in the run's vocabulary
    (``unknown``: {line number: its unknown tokens})."""
    lines = [(number, tokens) for number, tokens in sorted(unknown.items()) if tokens]
    if not lines:
        return
    number, tokens = lines[0]
    shown = ", ".join(repr(token) for token in tokens[:5])
    total = sum(len(tokens) for _, tokens in lines)
    if policy == "error":
        raise DataError(f"line {number} has tokens the run's vocabulary lacks ({shown}); "
                        f"{total} in {len(lines)} line(s) in all: --unknown map reads "
                        "them as <unk>")
    print(f"warning: {total} source token(s) in {len(lines)} line(s) are not in the run's "
          f"vocabulary and were read as <unk> (line {number}: {shown})", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Print one line per input line; returns the exit code."""
    loaded = load_run(args.run_dir, which=args.checkpoint, device=args.device, read_data=False)
    task = loaded.task
    if not isinstance(task, TranslateTask):
        raise ValueError(f"{args.run_dir} is a run of task {task.name!r}; translate needs a run "
                         "of `rnnlab train translate`")
    sources = read_sources(args.data)
    numbers = [number for number, source in enumerate(sources, start=1) if source]
    paths = (attention_paths(args.attention, numbers, len(sources)) if args.attention
             else None)
    # unknown tokens are found before decoding: nothing is decoded for nothing
    encoded = [task.encode_source(sources[number - 1]) for number in numbers]
    check_unknown({number: unknown for number, (_, _, unknown) in zip(numbers, encoded)},
                  args.unknown)
    beam_size = args.beam_size or task.beam_size
    translated = task.translate(loaded.model, [sources[number - 1] for number in numbers],
                                beam_size=beam_size, batch_size=args.batch_size,
                                encoded=encoded)
    by_line = dict(zip(numbers, translated))
    for number, source in enumerate(sources, start=1):  # a blank line gives a blank line
        item = by_line.get(number)
        if args.format == "jsonl":
            print(json.dumps({"source": source, "translation": item.text if item else "",
                              "score": item.score if item else None,
                              "unknown": item.unknown if item else []}, ensure_ascii=False))
        else:
            print(item.text if item else "")
    if paths is not None:
        from rnnlab.diagnostics.plots import plot_attention

        for number, item, path in zip(numbers, translated, paths):
            plot_attention(item.attention, item.source_tokens, item.tokens, path=path,
                           title=f"{number}: {item.source[:80]}")
        print(f"attention maps: {paths[0].parent}/attention-*.png ({len(paths)})",
              file=sys.stderr)
    return 0
