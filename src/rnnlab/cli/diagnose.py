"""``rnnlab diagnose``: gradient flow, decay, horizon and spectra of recurrent models.

    rnnlab diagnose --cell rnn,lstm,gru --seq-len 100 --hidden 64 --out DIR   # at initialisation
    rnnlab diagnose RUN_DIR --out DIR                                         # a trained model

Prints a table (model, decay rate per step, horizon, spectral radius, verdict); with ``--out``
also writes ``summary.json``, ``gradient_flow_<cell>.png``, ``decay.png`` and ``eigenvalues.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from rnnlab.cli._parser import positive_float, positive_int
from rnnlab.errors import CheckpointError
from rnnlab.nn import CELL_NAMES
from rnnlab.nn.cells import spec_of

NAME = "diagnose"
CELLS = CELL_NAMES
DEFAULT_CELLS = "rnn,lstm,gru"
# Options that describe models at initialisation and make no sense with RUN_DIR.
_INIT_OPTIONS = ("cell", "seq_len", "hidden", "layers", "spectral_radius")


def cell_list(text: str) -> list[str]:
    """argparse type: a comma-separated list of cell names."""
    cells = [cell.strip() for cell in text.split(",") if cell.strip()]
    unknown = [cell for cell in cells if cell not in CELLS]
    if not cells or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown cell {', '.join(unknown) or repr(text)} (choose from {', '.join(CELLS)})"
        )
    return list(dict.fromkeys(cells))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diagnose`` subcommand."""
    parser = subparsers.add_parser(
        NAME,
        help="gradient flow, decay, horizon and spectra of recurrent models",
        description=(
            "Measure how gradients flow back in time: the matrix ‖∂J_t/∂h_j‖, its decay per step, "
            "the gradient horizon, the spectra of the recurrent matrices and Pascanu et al.'s "
            "condition for vanishing. Without RUN_DIR, models at initialisation (input size = "
            "hidden size, standard normal inputs); with RUN_DIR, the trained model's recurrent "
            "layer on a training batch (token inputs go through the model's embedding)."
        ),
    )
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                        help="a run directory written by `rnnlab train` (optional)")
    parser.add_argument("--cell", type=cell_list, default=None, metavar="CELLS",
                        help=f"comma-separated cells to compare (default {DEFAULT_CELLS}; "
                             f"choices: {', '.join(CELLS)})")
    parser.add_argument("--seq-len", type=positive_int, default=None, metavar="T",
                        help="sequence length in time steps (default 100)")
    parser.add_argument("--hidden", type=positive_int, default=None, metavar="H",
                        help="hidden size (default 64)")
    parser.add_argument("--layers", type=positive_int, default=None, metavar="L",
                        help="number of stacked layers (default 1)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="B",
                        help="sequences averaged over (default 32)")
    parser.add_argument("--spectral-radius", type=positive_float, default=None, metavar="R",
                        help="rescale each recurrent matrix (each gate block for LSTM/GRU) to "
                             "spectral radius R")
    parser.add_argument("--sources", type=positive_int, default=None, metavar="N",
                        help="compute the loss at only N evenly spaced steps (long sequences)")
    parser.add_argument("--threshold", type=positive_float, default=1e-3,
                        help="gradient-horizon threshold on g(d) (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write summary.json and PNG plots to DIR (new, empty, or an "
                             "earlier diagnosis; other directories need --force)")
    parser.add_argument("--force", action="store_true",
                        help="write into --out even when it holds other files (only the "
                             "diagnosis's own file names are replaced)")
    parser.set_defaults(func=run)


def _models_at_init(args: argparse.Namespace) -> list[tuple[str, torch.nn.Module, torch.Tensor]]:
    """(cell, layer, inputs (T, B, H)) for each requested cell, seeded."""
    from rnnlab import recurrent
    from rnnlab.diagnostics import set_spectral_radius

    hidden = args.hidden or 64
    steps = args.seq_len or 100
    _check_memory(args, hidden, steps)
    generator = torch.Generator().manual_seed(args.seed)
    inputs = torch.randn(steps, args.batch_size, hidden, generator=generator)  # (T, B, H)
    models = []
    for cell in args.cell or cell_list(DEFAULT_CELLS):
        torch.manual_seed(args.seed)
        layer = recurrent(cell, hidden, hidden, num_layers=args.layers or 1)
        if args.spectral_radius is not None:
            set_spectral_radius(layer, args.spectral_radius)
        models.append((cell, layer, inputs))
    return models


def _check_memory(args: argparse.Namespace, hidden: int, steps: int) -> None:
    """Refuse (one line) sizes whose layers, inputs and gradient-flow matrix cannot fit."""
    from rnnlab import recurrent
    from rnnlab.training import sizes

    layers = args.layers or 1
    cells = args.cell or cell_list(DEFAULT_CELLS)
    advice = "lower --hidden, --layers, --seq-len or --batch-size (--sources N for long sequences)"
    for cell in cells:  # before building even a meta-device model of absurd depth
        sizes.check_fits(sizes.recurrent_state_floor(cell=cell, hidden=hidden, layers=layers,
                                                     directions=1, optimizer="sgd"),
                         torch.device("cpu"), advice=advice)
    largest = sizes.MemoryEstimate(0, 0)
    for cell in cells:
        layer = sizes.meta_model(lambda cell=cell: recurrent(cell, hidden, hidden,
                                                             num_layers=layers))
        if layer is None:
            continue
        needed = sizes.estimate(layer, optimizer="sgd", cell=cell, hidden=hidden,
                                layers=layers, directions=1, rows=args.batch_size, steps=steps)
        largest = max(largest, needed, key=lambda estimate: estimate.total)
    flow = (args.sources or steps) * steps * sizes.FLOAT_BYTES  # ‖∂J_t/∂h_j‖ for every (t, j)
    inputs = steps * args.batch_size * hidden * sizes.FLOAT_BYTES
    sizes.check_fits(sizes.MemoryEstimate(largest.state, largest.activations, flow + inputs,
                                          "inputs and the gradient-flow matrix"),
                     torch.device("cpu"), advice=advice)


def _model_from_run(args: argparse.Namespace) -> list[tuple[str, torch.nn.Module, torch.Tensor]]:
    """The trained recurrent layer of RUN_DIR with (embedded) inputs from a training batch."""
    given = [f"--{name.replace('_', '-')}" for name in _INIT_OPTIONS
             if getattr(args, name) is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: only for models at initialisation, not with "
                         "RUN_DIR")
    try:
        from rnnlab.training import load_run
    except ImportError:
        raise CheckpointError("diagnosing a run directory needs rnnlab.training, which is not "
                              "available in this installation") from None
    from rnnlab.diagnostics._models import recurrent_layers

    loaded = load_run(args.run_dir)
    layers = recurrent_layers(loaded.model)
    if len(layers) != 1:
        found = ", ".join(name for name, _ in layers) or "none"
        raise CheckpointError(f"{args.run_dir}: diagnose needs a model with exactly one rnnlab "
                              f"recurrent layer, found {found}")
    _, layer = layers[0]
    inputs = loaded.task.train_batch(0, args.batch_size).inputs
    if not inputs.dtype.is_floating_point:
        embedding = next((module for module in loaded.model.modules()
                          if isinstance(module, torch.nn.Embedding)), None)
        if embedding is None:
            raise CheckpointError(f"{args.run_dir}: token inputs but no embedding in the model")
        with torch.no_grad():
            inputs = embedding(inputs)
    inputs = inputs.to(next(layer.parameters()).dtype)
    # The task's batches are (B, T, F); the layer reads them in its own layout.
    if not layer.batch_first:
        inputs = inputs.transpose(0, 1)
    name = spec_of(layer).name
    return [(name, layer, inputs.detach())]


def _is_earlier_diagnosis(directory: Path) -> bool:
    from rnnlab.training.rundir import holds_only

    return holds_only(directory, ("summary.json",), "summary.json", ("config", "models"))


def _write_outputs(out: Path, diagnoses: list, config: dict[str, Any]) -> list[Path]:
    from rnnlab.diagnostics import plots

    written = []
    summary = {"config": config, "models": [diagnosis.to_dict() for diagnosis in diagnoses]}
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written.append(path)
    for diagnosis in diagnoses:
        path = out / f"gradient_flow_{diagnosis.name}.png"
        plots.plot_gradient_flow(diagnosis.flow, path,
                                 title=f"Gradient flow ‖∂J_t/∂h_j‖, {diagnosis.name} "
                                       f"({diagnosis.flow.row_labels[0]})")
        written.append(path)
    flows = {diagnosis.name: diagnosis.flow for diagnosis in diagnoses}
    written.append(out / "decay.png")
    plots.plot_decay(flows, written[-1])
    spectra = {diagnosis.name: diagnosis.spectra for diagnosis in diagnoses}
    written.append(out / "eigenvalues.png")
    plots.plot_eigenvalues(spectra, written[-1])
    return written


def run(args: argparse.Namespace) -> int:
    """Diagnose the models, print the table, write the files; return the exit code."""
    from rnnlab.training.rundir import claim_output_directory

    lock = None
    if args.out is not None:  # checked (and held) before the work, not after it
        lock = claim_output_directory(args.out, "diagnose", earlier_output=_is_earlier_diagnosis,
                                      force=args.force)
    try:
        return _run(args)
    finally:
        if lock is not None:
            lock.release()


def _run(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics import diagnose, format_table

    if args.run_dir is not None:
        models = _model_from_run(args)
    else:
        models = _models_at_init(args)
    steps = models[0][2].shape[1 if models[0][1].batch_first else 0]
    if args.sources is not None and args.sources > steps:
        raise ValueError(f"--sources {args.sources} exceeds the sequence length {steps}")
    diagnoses = [diagnose(layer, inputs, name=name, threshold=args.threshold,
                          sources=args.sources)
                 for name, layer, inputs in models]
    print(format_table(diagnoses))
    if args.out is not None:
        config = {key: (str(value) if isinstance(value, Path) else value)
                  for key, value in vars(args).items() if key != "func"}
        written = _write_outputs(args.out, diagnoses, config)
        print(f"wrote {len(written)} files to {args.out}")
    return 0
