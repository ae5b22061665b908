"""Hand-written backpropagation through time: for recurrences torch has no fused kernel for (the
lecture's GRU, the linear RNN), and for torch's GRU on CPU, where torch's own kernel is a per-step
path that this one beats (benchmarks/RESULTS.md).

Each ``torch.autograd.Function`` runs the step loop without building an autograd graph, keeps the
few per-step tensors the backward needs, and in the backward walks the steps in reverse computing
only the gradients of the pre-activations; the recurrent weight gradients are then ONE matrix
product over all steps (``dW_hh = Σ_t δ_tᵀ h_{t-1}``) instead of T small ones. Every backward here
is checked against autograd with ``torch.autograd.gradcheck`` in float64 (tests/nn/test_kernels.py).

Double backward and batched gradients go through a differentiable twin (the reference loop on the
same input projection; :mod:`.double_backward`), so each function also keeps its inputs,
the projection included: per step 3H more saved floats for the GRUs (7H -> 10H for torch's,
5H -> 8H for the lecture's) and H more for the Elman RNN (H -> 2H), the price of exact second
derivatives whenever they are asked for.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from rnnlab.nn.kernels.double_backward import twin_gradients, twin_required

# differentiable(projection, hidden, weight_hh, bias_hh, mask) -> (output, final hidden): the same
# recurrence by autograd-differentiable operations, for double backward and batched gradients.
Differentiable = Callable[[Tensor, Tensor, Tensor, "Tensor | None", "Tensor | None"],
                          "tuple[Tensor, Tensor]"]


def _bias_sum(gradient: Tensor, needed: bool) -> Tensor | None:
    return gradient.sum(dim=(0, 1)) if needed else None


def _finish(output: Tensor, hidden: Tensor, mask: Tensor | None) -> Tensor:
    """End of a forward loop: zero the output past each end (in place); return the final hidden
    state as its own tensor (without a mask it is a view of the last output step)."""
    if mask is None:
        return hidden.clone()
    output.masked_fill_(~mask, 0.0)
    return hidden


def _save(ctx: FunctionCtx, inputs: tuple[Tensor | None, ...], differentiable: Differentiable,
          *intermediates: Tensor | None) -> None:
    """Save the inputs (projection, initial hidden, weight_hh, bias_hh, mask) — double backward
    recomputes from them, and its graph reaches what they were computed from — then what the
    analytic backward needs."""
    ctx.save_for_backward(*inputs, *intermediates)
    ctx.differentiable = differentiable
    ctx.has_bias = inputs[3] is not None


def _twin_gradients(ctx: FunctionCtx, grad_output: Tensor | None,
                    grad_hidden: Tensor | None) -> list[Tensor | None]:
    """Gradients of (projection, hidden, weight_hh, bias_hh) through the twin, with a graph."""
    projection, initial, weight_hh, bias_hh, mask = ctx.saved_tensors[:5]

    def differentiable(projection, hidden, weight_hh, bias_hh):
        return ctx.differentiable(projection, hidden, weight_hh, bias_hh, mask)

    return twin_gradients(differentiable, [projection, initial, weight_hh, bias_hh],
                          ctx.needs_input_grad[:4], [grad_output, grad_hidden])


def _previous_states(initial: Tensor, output: Tensor, previous: Tensor | None) -> Tensor:
    """h_{t-1} for every step, (T, B, H): stored by masked runs (frozen states differ from the
    outputs), otherwise the initial state followed by the outputs."""
    if previous is not None:
        return previous
    return torch.cat([initial.unsqueeze(0), output[:-1]])


class LectureGRUFunction(torch.autograd.Function):
    r"""GRU with the reset gate applied before the recurrent product (``reset_after=False``).

    Inputs: ``projection`` (T, B, 3H) = ``W_ih x_t + b_ih`` in the order (r, z, n); ``hidden``
    (B, H) initial state; ``weight_hh`` (3H, H); ``bias_hh`` (3H,) or None; ``mask`` (T, B, 1) bool
    or None (state frozen and output zero past each sequence's end).
    Outputs: ``output`` (T, B, H), final hidden (B, H).

    Backward, per step (z is torch's keep gate, g the gradient reaching h_t):
    dñ = g(1−z)(1−ñ²); d(r∘h) = dñ W_n; dr = d(r∘h)∘h r(1−r); dz = g(h−ñ) z(1−z);
    dh_{t−1} = g z + d(r∘h)∘r + [dr, dz] W_rz.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        projection: Tensor,
        hidden: Tensor,
        weight_hh: Tensor,
        bias_hh: Tensor | None,
        mask: Tensor | None,
        differentiable: Differentiable,
    ) -> tuple[Tensor, Tensor]:
        steps, batch, _ = projection.shape
        size = hidden.shape[1]
        gate_weight_t = weight_hh[: 2 * size].t()  # (H, 2H)
        new_weight_t = weight_hh[2 * size :].t()  # (H, H)
        gate_input = projection[..., : 2 * size]  # (T, B, 2H)
        new_input = projection[..., 2 * size :]  # (T, B, H)
        if bias_hh is not None:
            gate_input = gate_input + bias_hh[: 2 * size]
            new_input = new_input + bias_hh[2 * size :]
        # Without a mask h_{t-1} is the previous output, so only masked runs store it separately.
        previous = None if mask is None else projection.new_empty(steps, batch, size)
        gates = projection.new_empty(steps, batch, 2 * size)  # (r, z) after sigmoid
        candidates = projection.new_empty(steps, batch, size)  # ñ
        reset_hidden = projection.new_empty(steps, batch, size)  # r ∘ h_{t-1}
        output = projection.new_empty(steps, batch, size)
        initial = hidden
        for step in range(steps):
            if previous is not None:
                previous[step] = hidden
            torch.addmm(gate_input[step], hidden, gate_weight_t, out=gates[step]).sigmoid_()
            reset, keep = gates[step].chunk(2, dim=1)
            torch.mul(reset, hidden, out=reset_hidden[step])
            candidate = candidates[step]
            torch.addmm(new_input[step], reset_hidden[step], new_weight_t, out=candidate).tanh_()
            torch.addcmul(candidate, keep, hidden - candidate, out=output[step])
            hidden = output[step] if mask is None else torch.where(mask[step], output[step], hidden)
        hidden = _finish(output, hidden, mask)
        _save(ctx, (projection, initial, weight_hh, bias_hh, mask), differentiable,
              output, previous, gates, candidates, reset_hidden)
        return output, hidden

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor | None, grad_hidden: Tensor | None):
        if twin_required(grad_output, grad_hidden):  # double backward or batched gradients
            return (*_twin_gradients(ctx, grad_output, grad_hidden), None, None)
        _, initial, weight_hh, _, mask, output, previous, gates, candidates, reset_hidden = (
            ctx.saved_tensors
        )
        steps, batch, size = candidates.shape
        previous = _previous_states(initial, output, previous)
        gate_weight, new_weight = weight_hh[: 2 * size], weight_hh[2 * size :]
        reset, keep = gates[..., :size], gates[..., size:]
        # Elementwise factors of the chain rule for all steps at once (T, B, H) each:
        # dñ_pre = g·(1−z)(1−ñ²); dz_pre = g·(h−ñ)z(1−z); dr_pre = d(r∘h)·h r(1−r).
        new_factor = (1.0 - keep) * (1.0 - candidates * candidates)
        keep_factor = (previous - candidates) * keep * (1.0 - keep)
        reset_factor = previous * reset * (1.0 - reset)
        grad_gates = candidates.new_empty(steps, batch, 3 * size)  # d pre-activations (r, z, ñ)
        carried = candidates.new_zeros(batch, size) if grad_hidden is None else grad_hidden
        for step in range(steps - 1, -1, -1):
            incoming = carried if grad_output is None else carried + grad_output[step]
            if mask is not None:
                incoming = torch.where(mask[step], incoming, 0.0)
            step_grad = grad_gates[step]
            grad_new = torch.mul(incoming, new_factor[step], out=step_grad[:, 2 * size :])
            torch.mul(incoming, keep_factor[step], out=step_grad[:, size : 2 * size])
            grad_reset_hidden = grad_new @ new_weight  # (B, H)
            torch.mul(grad_reset_hidden, reset_factor[step], out=step_grad[:, :size])
            grad_previous = torch.addcmul(incoming * keep[step], grad_reset_hidden, reset[step])
            grad_previous.addmm_(step_grad[:, : 2 * size], gate_weight)
            if mask is not None:
                grad_previous = torch.where(mask[step], grad_previous, carried)
            carried = grad_previous
        grad_weight = None
        if ctx.needs_input_grad[2]:
            flat_gates = grad_gates.reshape(-1, 3 * size)
            grad_weight = torch.cat(
                [
                    flat_gates[:, : 2 * size].t() @ previous.reshape(-1, size),
                    flat_gates[:, 2 * size :].t() @ reset_hidden.reshape(-1, size),
                ]
            )
        grad_bias = _bias_sum(grad_gates, ctx.has_bias and ctx.needs_input_grad[3])
        return grad_gates, carried, grad_weight, grad_bias, None, None


class GRUFunction(torch.autograd.Function):
    r"""torch's GRU (``reset_after=True``): the reset gate multiplies the projected state.

    Inputs and outputs as :class:`LectureGRUFunction`. Per step, with ``a = W_hh h + b_hh``
    (one product for all three blocks): r, z = σ(x_rz + a_rz); ñ = tanh(x_n + r∘a_n);
    h' = ñ + z(h − ñ).

    Backward, per step (g the gradient reaching h_t): dñ = g(1−z)(1−ñ²); dz = g(h−ñ) z(1−z);
    dr = dñ∘a_n r(1−r); da = [dr, dz, dñ∘r]; dh_{t−1} = g z + da W_hh; dW_hh = Σ_t da_tᵀ h_{t−1}.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        projection: Tensor,
        hidden: Tensor,
        weight_hh: Tensor,
        bias_hh: Tensor | None,
        mask: Tensor | None,
        differentiable: Differentiable,
    ) -> tuple[Tensor, Tensor]:
        steps, batch, _ = projection.shape
        size = hidden.shape[1]
        weight_t = weight_hh.t()  # (H, 3H)
        gate_input = projection[..., : 2 * size]  # (T, B, 2H)
        new_input = projection[..., 2 * size :]  # (T, B, H)
        previous = None if mask is None else projection.new_empty(steps, batch, size)
        recurrent = projection.new_empty(steps, batch, 3 * size)  # a = W_hh h + b_hh
        gates = projection.new_empty(steps, batch, 2 * size)  # (r, z) after sigmoid
        candidates = projection.new_empty(steps, batch, size)  # ñ
        output = projection.new_empty(steps, batch, size)
        initial = hidden
        for step in range(steps):
            if previous is not None:
                previous[step] = hidden
            if bias_hh is None:
                torch.mm(hidden, weight_t, out=recurrent[step])
            else:
                torch.addmm(bias_hh, hidden, weight_t, out=recurrent[step])
            torch.add(gate_input[step], recurrent[step, :, : 2 * size], out=gates[step]).sigmoid_()
            reset, keep = gates[step].chunk(2, dim=1)
            candidate = candidates[step]
            torch.addcmul(new_input[step], reset, recurrent[step, :, 2 * size :], out=candidate)
            candidate.tanh_()
            torch.addcmul(candidate, keep, hidden - candidate, out=output[step])
            hidden = output[step] if mask is None else torch.where(mask[step], output[step], hidden)
        hidden = _finish(output, hidden, mask)
        _save(ctx, (projection, initial, weight_hh, bias_hh, mask), differentiable,
              output, previous, recurrent, gates, candidates)
        return output, hidden

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor | None, grad_hidden: Tensor | None):
        if twin_required(grad_output, grad_hidden):  # double backward or batched gradients
            return (*_twin_gradients(ctx, grad_output, grad_hidden), None, None)
        _, initial, weight_hh, _, mask, output, previous, recurrent, gates, candidates = (
            ctx.saved_tensors
        )
        steps, batch, size = candidates.shape
        previous = _previous_states(initial, output, previous)
        reset, keep = gates[..., :size], gates[..., size:]
        # Elementwise chain-rule factors for all steps at once, (T, B, H) each.
        new_factor = (1.0 - keep) * (1.0 - candidates * candidates)  # dñ_pre / g
        keep_factor = (previous - candidates) * keep * (1.0 - keep)  # dz_pre / g
        reset_factor = new_factor * recurrent[..., 2 * size :] * reset * (1.0 - reset)  # dr_pre / g
        grad_input = candidates.new_empty(steps, batch, 3 * size)  # d(x projection): (r, z, ñ)
        grad_recurrent = candidates.new_empty(steps, batch, 3 * size)  # d a: (r, z, ñ∘r)
        carried = candidates.new_zeros(batch, size) if grad_hidden is None else grad_hidden
        for step in range(steps - 1, -1, -1):
            incoming = carried if grad_output is None else carried + grad_output[step]
            if mask is not None:
                incoming = torch.where(mask[step], incoming, 0.0)
            step_input, step_recurrent = grad_input[step], grad_recurrent[step]
            torch.mul(incoming, reset_factor[step], out=step_input[:, :size])
            torch.mul(incoming, keep_factor[step], out=step_input[:, size : 2 * size])
            grad_new = torch.mul(incoming, new_factor[step], out=step_input[:, 2 * size :])
            step_recurrent[:, : 2 * size] = step_input[:, : 2 * size]
            torch.mul(grad_new, reset[step], out=step_recurrent[:, 2 * size :])
            grad_previous = torch.addmm(incoming * keep[step], step_recurrent, weight_hh)
            if mask is not None:
                grad_previous = torch.where(mask[step], grad_previous, carried)
            carried = grad_previous
        grad_weight = None
        if ctx.needs_input_grad[2]:
            grad_weight = grad_recurrent.reshape(-1, 3 * size).t() @ previous.reshape(-1, size)
        grad_bias = _bias_sum(grad_recurrent, ctx.has_bias and ctx.needs_input_grad[3])
        return grad_input, carried, grad_weight, grad_bias, None, None


class ElmanFunction(torch.autograd.Function):
    r"""Vanilla RNN ``h_t = σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, σ ∈ {tanh, relu, linear}.

    Inputs: ``projection`` (T, B, H); ``hidden`` (B, H); ``weight_hh`` (H, H); ``bias_hh`` (H,) or
    None; ``mask`` (T, B, 1) bool or None; ``nonlinearity`` a string.
    Outputs: ``output`` (T, B, H), final hidden (B, H).
    Backward: δ_t = g_t ∘ σ'(·); dh_{t−1} = δ_t W_hh; dW_hh = Σ_t δ_tᵀ h_{t−1}.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        projection: Tensor,
        hidden: Tensor,
        weight_hh: Tensor,
        bias_hh: Tensor | None,
        mask: Tensor | None,
        nonlinearity: str,
        differentiable: Differentiable,
    ) -> tuple[Tensor, Tensor]:
        steps, batch, size = projection.shape
        weight_t = weight_hh.t()
        inputs = projection if bias_hh is None else projection + bias_hh
        previous = None if mask is None else projection.new_empty(steps, batch, size)
        activations = projection.new_empty(steps, batch, size)  # unmasked new states
        initial = hidden
        for step in range(steps):
            if previous is not None:
                previous[step] = hidden
            pre = torch.addmm(inputs[step], hidden, weight_t)
            if nonlinearity == "tanh":
                torch.tanh(pre, out=activations[step])
            elif nonlinearity == "relu":
                torch.clamp_min(pre, 0.0, out=activations[step])
            else:
                activations[step] = pre
            new_hidden = activations[step]
            hidden = new_hidden if mask is None else torch.where(mask[step], new_hidden, hidden)
        output = activations if mask is None else activations.masked_fill(~mask, 0.0)
        _save(ctx, (projection, initial, weight_hh, bias_hh, mask), differentiable,
              previous, activations)
        ctx.nonlinearity = nonlinearity
        return output, hidden.clone() if mask is None else hidden

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output: Tensor | None, grad_hidden: Tensor | None):
        if twin_required(grad_output, grad_hidden):  # double backward or batched gradients
            return (*_twin_gradients(ctx, grad_output, grad_hidden), None, None, None)
        _, initial, weight_hh, _, mask, previous, activations = ctx.saved_tensors
        previous = _previous_states(initial, activations, previous)
        steps, batch, size = previous.shape
        if ctx.nonlinearity == "tanh":
            derivative = 1.0 - activations * activations
        elif ctx.nonlinearity == "relu":
            derivative = (activations > 0).to(activations.dtype)
        else:
            derivative = None
        grad_pre = previous.new_empty(steps, batch, size)
        carried = previous.new_zeros(batch, size) if grad_hidden is None else grad_hidden
        for step in range(steps - 1, -1, -1):
            incoming = carried if grad_output is None else carried + grad_output[step]
            if mask is not None:
                incoming = torch.where(mask[step], incoming, 0.0)
            if derivative is None:
                grad_pre[step] = incoming
            else:
                torch.mul(incoming, derivative[step], out=grad_pre[step])
            grad_previous = grad_pre[step] @ weight_hh
            if mask is not None:
                grad_previous = torch.where(mask[step], grad_previous, carried)
            carried = grad_previous
        grad_weight = None
        if ctx.needs_input_grad[2]:
            grad_weight = grad_pre.reshape(-1, size).t() @ previous.reshape(-1, size)
        grad_bias = _bias_sum(grad_pre, ctx.has_bias and ctx.needs_input_grad[3])
        return grad_pre, carried, grad_weight, grad_bias, None, None, None
