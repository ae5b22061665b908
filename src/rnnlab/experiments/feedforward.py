"""Vanishing gradients are not just an RNN problem — but RNNs, reusing one matrix, suffer most.

(a) Deep feed-forward tanh stacks at PyTorch's default initialisation (no training): the gradient
‖∂loss/∂h_l‖ reaching each layer's output h_l, plain and with residual, dense and highway
connections. Backpropagation multiplies by one layer Jacobian per layer, so in the plain stack the
gradient shrinks geometrically toward the input; a skip connection adds an identity path.
(b) Chains h_l = φ(W_l h_{l-1}) (φ linear or tanh) with ONE matrix shared by every step (an
unrolled RNN) or an independent W_l per step (a deep net), every matrix with the SAME singular
values s: W = U diag(s) Vᵀ, U and V Haar-random. Over many draws, the spread of log ‖(∂h_L/∂h₀)ᵀg‖
grows like L for the shared matrix, whose powers follow its largest |eigenvalue|, but only like
√L for independent ones, whose random stretches add up like a random walk.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.ticker import MaxNLocator
from torch import Tensor, nn

from rnnlab.experiments import plotting, verdicts
from rnnlab.experiments.base import (
    Check,
    Experiment,
    ExperimentContext,
    ExperimentResult,
    seed_everything,
)
from rnnlab.experiments.vanishing import haar_orthogonal
from rnnlab.nn.connections import CONNECTIONS, layer_input_sizes, make_connection

NAMES = {"none": "plain", "residual": "residual", "dense": "dense", "highway": "highway"}
COLOURS = {"none": "tab:red", "residual": "tab:blue", "dense": "tab:green", "highway": "tab:orange"}
CLASSES = 10
VANISHED, KEPT = 1e-3, (0.1, 10.0)  # first/last gradient ratio thresholds of claim (a)
LARGER, EQUAL = 2.0, 1.5  # spread ratio thresholds of claim (b)
STEPS = ("linear", "tanh")

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"depths": [3, 10, 20], "width": 32, "batch": 64,
              "chain_depths": [1, 2, 4, 8, 16, 30], "chain_width": 16, "draws": 100},
    "default": {"depths": [3, 10, 20, 30], "width": 64, "batch": 128,
                "chain_depths": [1, 2, 4, 8, 16, 30], "chain_width": 16, "draws": 200},
    "full": {"depths": [3, 10, 20, 30, 40], "width": 128, "batch": 256,
             "chain_depths": [1, 2, 4, 8, 16, 30, 50], "chain_width": 16, "draws": 300},
}


def sizes(budget: str) -> dict[str, Any]:
    """The sizes this experiment uses under ``budget``."""
    return dict(SIZES[budget])


class FeedForwardStack(nn.Module):
    """``depth`` tanh layers of width ``width`` joined by ``connection``, then a linear readout.

    Layer l computes H_l(x) = tanh(W_l x + b_l) and outputs h_l (h_0 = the input):
    - none: h_l = H_l(h_{l-1});
    - residual: h_l = h_{l-1} + H_l(h_{l-1})  (rnnlab.nn.connections.Residual);
    - highway: h_l = T ∘ H_l(h_{l-1}) + (1 − T) ∘ h_{l-1}  (connections.Highway, gate bias −3);
    - dense: h_l = H_l([h_0, …, h_{l-1}]) (widths from connections.layer_input_sizes), and the
      readout reads [h_0, …, h_L], as the classifier after a DenseNet block reads all its
      feature maps (rnnlab's recurrent stack returns only h_L: there is no classifier to feed).
    Every nn.Linear keeps PyTorch's default initialisation, U(±1/√fan_in).
    """

    def __init__(self, connection: str, depth: int, width: int, classes: int = CLASSES) -> None:
        super().__init__()
        if connection not in CONNECTIONS:
            raise ValueError(f"connection must be one of {CONNECTIONS}, got {connection!r}")
        self.connection = connection
        input_sizes = layer_input_sizes(connection, width, width, depth)
        self.layers = nn.ModuleList(nn.Linear(size, width) for size in input_sizes)
        combiners = [make_connection(connection, size, width) for size in input_sizes]
        self.combiners = nn.ModuleList(combiners) if combiners[0] is not None else None
        self.readout = nn.Linear(width * (depth + 1) if connection == "dense" else width, classes)

    def forward(self, inputs: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``inputs`` (B, W) -> logits (B, classes) and the layer outputs h_1 … h_L, each (B, W)."""
        features, layer_input = [inputs], inputs
        for index, layer in enumerate(self.layers):
            if self.connection == "dense":
                layer_input = torch.cat(features, dim=1)  # (B, W·(index + 1))
            output = torch.tanh(layer(layer_input))
            if self.combiners is not None:
                output = self.combiners[index](layer_input, output)
            features.append(output)
            layer_input = output
        top = torch.cat(features, dim=1) if self.connection == "dense" else layer_input
        return self.readout(top), features[1:]


def layer_gradients(model: FeedForwardStack, inputs: Tensor, labels: Tensor) -> Tensor:
    """‖∂loss/∂h_l‖ for l = 1 … L, shape (L,): cross-entropy of ``inputs`` (B, W) against
    ``labels`` (B,), norm over the batch and the units of each layer output."""
    logits, hidden = model(inputs)
    gradients = torch.autograd.grad(F.cross_entropy(logits, labels), hidden)
    return torch.stack([gradient.norm() for gradient in gradients])


def measure_stacks(size: dict[str, Any], seed: int, context: ExperimentContext
                   ) -> dict[str, dict[str, Any]]:
    """Per connection: the first/last gradient ratio at every depth, and the per-layer gradient
    relative to the last layer's at the deepest depth."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size["batch"], size["width"], generator=generator)  # (B, W)
    labels = torch.randint(0, CLASSES, (size["batch"],), generator=generator)
    results: dict[str, dict[str, Any]] = {}
    for connection in CONNECTIONS:
        results[connection] = {"ratio": {}}
        for depth in size["depths"]:
            seed_everything(seed)
            norms = layer_gradients(FeedForwardStack(connection, depth, size["width"]),
                                    inputs, labels)
            results[connection]["ratio"][depth] = float(norms[0] / norms[-1])
            if depth == max(size["depths"]):
                results[connection]["profile"] = (norms / norms[-1]).tolist()
        context.advance()
    return results


def with_singular_values(singular_values: Tensor, count: int, generator: torch.Generator
                         ) -> Tensor:
    """``count`` matrices U diag(s) Vᵀ (count, n, n), U and V Haar-random: every one has exactly
    the singular values s (n,), in random orientations."""
    size = singular_values.shape[0]
    left = haar_orthogonal(count, size, generator)
    right = haar_orthogonal(count, size, generator)
    return (left * singular_values) @ right.transpose(-1, -2)


def chain_log_gradients(matrices: Tensor, start: Tensor, top: Tensor, depths: list[int],
                        step: str) -> Tensor:
    """log₁₀ ‖∂(g · h_L)/∂h_0‖ = log₁₀ ‖(∂h_L/∂h_0)ᵀ g‖ for every L in ``depths``, by autograd.

    ``matrices`` (max depth, D, n, n): step l computes h_l = φ(W_l h_{l-1}) with φ = identity
    ("linear") or tanh, independently for each of the D draws; ``start`` h_0 (D, n); ``top`` the
    unit vector g (D, n) back-propagated from h_L. Returns (len(depths), D).
    """
    start = start.clone().requires_grad_(True)
    hidden, states = start, []
    for matrix in matrices[: max(depths)]:
        hidden = (matrix @ hidden.unsqueeze(-1)).squeeze(-1)  # (D, n)
        hidden = torch.tanh(hidden) if step == "tanh" else hidden
        states.append(hidden)
    logs = []
    for depth in depths:
        (gradient,) = torch.autograd.grad((states[depth - 1] * top).sum(), start,
                                          retain_graph=True)
        logs.append(gradient.norm(dim=-1).log10())
    return torch.stack(logs)


def measure_chains(size: dict[str, Any], seed: int, context: ExperimentContext
                   ) -> dict[str, Any]:
    """Spread (std over draws) of the log₁₀ gradient norm per depth, shared vs independent W."""
    generator = torch.Generator().manual_seed(seed)
    width, draws, depths = size["chain_width"], size["draws"], size["chain_depths"]
    reference = torch.randn(width, width, generator=generator, dtype=torch.float64)
    singular_values = torch.linalg.svdvals(reference / math.sqrt(width))  # spectral radius ≈ 1
    shared = with_singular_values(singular_values, draws, generator)  # (D, n, n)
    independent = with_singular_values(singular_values, max(depths) * draws, generator)
    independent = independent.view(max(depths), draws, width, width)
    start = torch.randn(draws, width, generator=generator, dtype=torch.float64)
    top = F.normalize(torch.randn(draws, width, generator=generator, dtype=torch.float64), dim=-1)
    result: dict[str, Any] = {"spread": {}}
    for step in STEPS:
        logs = {"shared": chain_log_gradients(shared.expand(max(depths), -1, -1, -1), start, top,
                                              depths, step),
                "independent": chain_log_gradients(independent, start, top, depths, step)}
        result["spread"][step] = {kind: value.std(dim=1).tolist() for kind, value in logs.items()}
        if step == "linear":
            radius = torch.linalg.eigvals(shared).abs().amax(dim=-1)  # (D,)
            predicted = max(depths) * radius.log10()
            result["eigen_correlation"] = float(torch.corrcoef(
                torch.stack([predicted, logs["shared"][-1]]))[0, 1])
            result["deepest"] = {kind: value[-1].tolist() for kind, value in logs.items()}
        context.advance()
    return result


def run(context: ExperimentContext) -> ExperimentResult:
    """(a) the feed-forward stacks over seeds, then (b) the shared/independent chains."""
    size = sizes(context.budget)
    seeds = list(context.seeds)
    context.start((len(CONNECTIONS) + len(STEPS)) * len(seeds))  # each unit about as costly
    stacks = [measure_stacks(size, seed, context) for seed in seeds]
    chains = [measure_chains(size, seed, context) for seed in seeds]

    deep, shallow = max(size["depths"]), min(size["depths"])
    ratios = {NAMES[c]: [stack[c]["ratio"][deep] for stack in stacks] for c in CONNECTIONS}
    control = [stack["none"]["ratio"][shallow] for stack in stacks]
    stack_check = Check(
        claim=f"{deep} tanh layers at initialisation: ‖∂loss/∂h₁‖ / ‖∂loss/∂h_L‖ ≤ {VANISHED:g} "
              f"without skip connections, within {KEPT[0]:g}–{KEPT[1]:g} with residual, dense "
              f"or highway ones (every seed); control: {shallow} plain layers within "
              f"{KEPT[0]:g}–{KEPT[1]:g}",
        measurement="; ".join(f"{name} {_range(values)}" for name, values in ratios.items())
                    + f"; control, {shallow} plain layers {_range(control)}",
        verdict=verdicts.skip_connections_keep_gradient(ratios, control, layers=deep,
                                                        shallow_layers=shallow),
    )
    depths = size["chain_depths"]
    spread = {step: {kind: [[chain["spread"][step][kind][k] for chain in chains]
                            for k in range(len(depths))] for kind in ("shared", "independent")}
              for step in STEPS}
    linear = spread["linear"]
    exponents = {f"{step} {kind}": _growth_exponent(depths, spread[step][kind])
                 for step in STEPS for kind in ("shared", "independent")}
    correlation = [chain["eigen_correlation"] for chain in chains]
    tanh = [a / b for a, b in zip(spread["tanh"]["shared"][-1], spread["tanh"]["independent"][-1])]
    chain_check = Check(
        claim=f"linear steps, {size['chain_width']} units, {size['draws']} draws: the std of "
              f"log₁₀‖(∂h_L/∂h₀)ᵀg‖ at depth {depths[-1]} is ≥ {LARGER:g}× larger with one shared "
              f"W than with independent W_l of the same singular values (median over seeds); "
              f"control: at depth 1 the spreads agree within {EQUAL:g}×",
        measurement=(f"depth {depths[-1]}: shared {_range(linear['shared'][-1], '.3f')}, "
                     f"independent {_range(linear['independent'][-1], '.3f')}; depth 1: shared "
                     f"{_range(linear['shared'][0], '.3f')}, independent "
                     f"{_range(linear['independent'][0], '.3f')}; spread ∝ depthᵏ (fit at depths "
                     f"≥ 8), k = "
                     + ", ".join(f"{value:.2f} ({name})" for name, value in exponents.items())
                     + f"; shared: correlation of log₁₀‖(∂h_L/∂h₀)ᵀg‖ with L·log₁₀ρ(W) "
                       f"{_range(correlation, '.2f')}; tanh steps (not judged): ratio "
                       f"{_range(tanh, '.2f')}"),
        verdict=verdicts.shared_matrix_spreads_more(
            linear["shared"][-1], linear["independent"][-1], depths[-1],
            linear["shared"][0], linear["independent"][0]),
    )
    checks = [stack_check, chain_check]
    plain = statistics.median(ratios["plain"])
    orders = round(-math.log10(plain)) if plain > 0 else "many"
    verdict = verdicts.combine([check.verdict for check in checks])
    plots = [_plot_stacks(context, stacks, size), _plot_chains(context, spread, chains, size)]
    first_over_last = {NAMES[c]: {str(depth): [stack[c]["ratio"][depth] for stack in stacks]
                                  for depth in size["depths"]} for c in CONNECTIONS}
    profiles = {NAMES[c]: [stack[c]["profile"] for stack in stacks] for c in CONNECTIONS}
    numbers = {
        "seeds": seeds,
        "stacks": {"first_over_last": first_over_last, "profile_relative_to_last": profiles},
        "chains": {"depths": depths, "spread_log10": spread, "growth_exponent": exponents,
                   "correlation_with_depth_times_log10_spectral_radius": correlation,
                   "tanh_ratio_at_deepest": tanh},
        "thresholds": {"vanished": VANISHED, "kept": list(KEPT), "larger": LARGER, "equal": EQUAL},
    }
    meaning = verdicts.explain(
        verdict,
        supported=f"Depth alone makes gradients vanish: a plain {deep}-layer tanh net gives its "
                  f"first layer a gradient about {orders} orders of magnitude smaller than its "
                  "last, and skip connections fix it. An RNN is worse than a deep net because it "
                  "reuses one matrix, so one unlucky eigenvalue is raised to the power of the "
                  "sequence length.",
        not_supported="The measured gradients contradict the lecture here: see which check "
                      "failed, and whether the plain net kept its gradient or a skip net lost it.",
        inconclusive="The contrast was not clear enough to decide, or a control failed (a "
                     "shallow plain net already lost its gradient, or the two constructions "
                     "differed at depth 1, where they should agree).",
    )
    return ExperimentResult(numbers, plots, checks, verdict, meaning=meaning)


def _range(values: list[float], spec: str = ".3g") -> str:
    """Per-seed values as text: "median (min–max)", or the value itself for one seed."""
    return (f"{statistics.median(values):{spec}} ({min(values):{spec}}–{max(values):{spec}})"
            if len(values) > 1 else f"{values[0]:{spec}}")


def _growth_exponent(depths: list[int], runs: list[list[float]]) -> float:
    """Least-squares slope of log spread against log depth over depths ≥ 8 (medians over seeds)."""
    kept = [(math.log(depth), math.log(statistics.median(values)))
            for depth, values in zip(depths, runs) if depth >= 8]
    return statistics.linear_regression(*zip(*kept)).slope


def _plot_stacks(context: ExperimentContext, stacks: list[dict[str, Any]],
                 size: dict[str, Any]) -> str:
    fig, (profile_axis, depth_axis) = plotting.figure(2, width=5.8, height=4.2)
    deep = max(size["depths"])
    for connection in CONNECTIONS:
        colour, name = COLOURS[connection], NAMES[connection]
        profiles = [stack[connection]["profile"] for stack in stacks]
        plotting.spread(profile_axis, range(1, deep + 1), list(zip(*profiles)), colour=colour,
                        text=name, style=".-")  # one point per layer, band over seeds
        plotting.spread(depth_axis, size["depths"],
                        [[stack[connection]["ratio"][depth] for stack in stacks]
                         for depth in size["depths"]], colour=colour, text=name)
    depth_axis.axhspan(*KEPT, color="gray", alpha=0.12, label=f"kept: {KEPT[0]:g}–{KEPT[1]:g}")
    depth_axis.axhline(VANISHED, color="black", linestyle="--", linewidth=1,
                       label=f"vanished: ≤ {VANISHED:g}")
    profile_axis.set(title=f"{deep} tanh layers at init: gradient reaching each layer (band: "
                           f"{len(stacks)} seeds)", xlabel="layer l (1 = nearest the input)",
                     ylabel="‖∂loss/∂h_l‖ / ‖∂loss/∂h_L‖", yscale="log")
    depth_axis.set(title="gradient at the first layer / at the last, by depth",
                   xlabel="number of layers L", ylabel="‖∂loss/∂h₁‖ / ‖∂loss/∂h_L‖", yscale="log")
    profile_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (profile_axis, depth_axis):
        axis.minorticks_off()  # 5-10 decades: minor ticks add clutter (and drawing time)
    depth_axis.set_xticks(size["depths"])
    profile_axis.legend(fontsize=8)
    depth_axis.legend(fontsize=8)
    return plotting.save(fig, context.plot_path("feedforward_layers.png"))


def _plot_chains(context: ExperimentContext, spread: dict[str, Any], chains: list[dict[str, Any]],
                 size: dict[str, Any]) -> str:
    fig, (spread_axis, histogram_axis) = plotting.figure(2, width=5.8, height=4.2)
    depths = size["chain_depths"]
    colours = {"shared": "tab:red", "independent": "tab:blue"}
    for step in STEPS:
        for kind, colour in colours.items():
            plotting.spread(spread_axis, depths, spread[step][kind], colour=colour,
                            text=f"{kind} W, {step}",
                            style="o-" if step == "linear" else "s--")
    for kind, power, style, text in (("shared", 1.0, ":", "∝ depth (through the end)"),
                                     ("independent", 0.5, "-.", "∝ √depth (through the end)")):
        end = statistics.median(spread["linear"][kind][-1])
        spread_axis.plot(depths, [end * (depth / depths[-1]) ** power for depth in depths], style,
                         color="black", linewidth=1, label=text)
    spread_axis.set(title=f"spread of the gradient's size over draws (band: {len(chains)} seeds)",
                    xlabel="depth L (steps)", ylabel="std over draws of log₁₀‖(∂h_L/∂h₀)ᵀg‖",
                    xscale="log", yscale="log")
    spread_axis.set_xticks(depths, [str(depth) for depth in depths])
    spread_axis.legend(fontsize=7)
    deepest = chains[0]["deepest"]
    bins = torch.linspace(min(min(v) for v in deepest.values()),
                          max(max(v) for v in deepest.values()), 30).tolist()
    for kind, colour in colours.items():
        histogram_axis.hist(deepest[kind], bins=bins, color=colour, alpha=0.5, label=f"{kind} W")
    histogram_axis.set(title=f"each draw's gradient size at depth {depths[-1]} (linear, seed "
                             f"{context.seeds[0]})", xlabel="log₁₀‖(∂h_L/∂h₀)ᵀg‖",
                       ylabel="number of draws")
    histogram_axis.legend(fontsize=8)
    return plotting.save(fig, context.plot_path("feedforward_shared.png"))


EXPERIMENT = Experiment(
    name="feedforward",
    title="Deep feed-forward nets vanish too; RNNs reuse one matrix",
    claim=(
        "Vanishing gradients are not just an RNN problem: in a plain stack of tanh layers (30 at "
        "the default budget; 20 quick, 40 full) at PyTorch's default initialisation, the "
        f"gradient ‖∂loss/∂h₁‖ reaching the first layer is ≤ {VANISHED:g} × the last layer's "
        "in every seed, while residual, dense and highway connections keep that ratio between "
        f"{KEPT[0]:g} and {KEPT[1]:g}; control: a plain stack of 3 layers stays in that band. "
        "RNNs are particularly unstable because every step multiplies by the same matrix: over "
        "random draws of matrices that all have the same singular values, the spread (standard "
        "deviation) of log₁₀‖(∂h_L/∂h₀)ᵀg‖ at the deepest depth (30; 50 full) is "
        f"≥ {LARGER:g}× larger when one W is shared by all steps than when each step has its "
        f"own W_l (median over seeds); control: at depth 1 the spreads agree within {EQUAL:g}×."
    ),
    published=(
        "Bengio, Simard & Frasconi (1994), Learning long-term dependencies with gradient descent "
        "is difficult: storing information robustly in a recurrent net's iterated map needs "
        "contracting dynamics, which make gradients w.r.t. distant inputs vanish exponentially. "
        "Glorot & Bengio (2010): with the standard initialisation U(±1/√n) (PyTorch's nn.Linear "
        "default) the variance of back-propagated gradients of deep tanh nets changes from layer "
        "to layer (decreasing toward the input); they proposed normalised (Xavier) "
        "initialisation. He et al. (2016): identity shortcuts train nets of 152 (ImageNet) and "
        "1202 (CIFAR) layers where deeper plain nets train worse; in their follow-up, the "
        "shortcut adds an identity term to ∂loss/∂x_l, so it is unlikely to vanish. "
        "Srivastava, Greff & Schmidhuber (2015): highway nets with gated carry (negative gate "
        "bias) train at 100 layers with plain SGD. Huang et al. (2017), DenseNet: every layer "
        "reads all earlier feature maps and gets direct supervision from the loss."
    ),
    setup=(
        "(a) Stacks of nn.Linear + tanh (width 64 at the default budget; 32 quick, 128 full) "
        "with connection none / residual / dense / highway, built from rnnlab.nn.connections "
        "(Residual, Highway with gate bias −3, dense input widths), a 10-class linear readout "
        "and cross-entropy against random labels on a Gaussian batch; ‖∂loss/∂h_l‖ (activation "
        "gradients, norm over batch and units) by autograd at initialisation, per seed. "
        "(b) Chains hₗ = Wₗ hₗ₋₁ (and tanh(Wₗ hₗ₋₁), shown but not judged) in float64 "
        "with 16 units: per seed, the singular values s of one Gaussian N(0, 1/16) matrix; per "
        "draw (100–300), a shared W = U diag(s) Vᵀ or independent W_l = U_l diag(s) V_lᵀ, Haar "
        "U, V; a random h₀ and unit vector g; ∂(g · h_L)/∂h₀ by autograd."
    ),
    run=run,
    sizes=sizes,
    expected_s={"quick": 2.0, "default": 6.0, "full": 15.0},
)
