"""Hand-written backpropagation through time for recurrences torch has no fused kernel for.

Each ``torch.autograd.Function`` runs the step loop without building an autograd graph, keeps the
few per-step tensors the backward needs, and in the backward walks the steps in reverse computing
only the gradients of the pre-activations; the recurrent weight gradients are then ONE matrix
product over all steps (``dW_hh = Σ_t δ_tᵀ h_{t-1}``) instead of T small ones. Every backward here
is checked against autograd with ``torch.autograd.gradcheck`` in float64 (tests/nn/test_kernels.py).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable


def _bias_sum(gradient: Tensor, needed: bool) -> Tensor | None:
    return gradient.sum(dim=(0, 1)) if needed else None


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
        previous = projection.new_empty(steps, batch, size)  # h_{t-1}
        gates = projection.new_empty(steps, batch, 2 * size)  # (r, z) after sigmoid
        candidates = projection.new_empty(steps, batch, size)  # ñ
        reset_hidden = projection.new_empty(steps, batch, size)  # r ∘ h_{t-1}
        output = projection.new_empty(steps, batch, size)
        for step in range(steps):
            previous[step] = hidden
            torch.sigmoid(torch.addmm(gate_input[step], hidden, gate_weight_t), out=gates[step])
            reset, keep = gates[step].chunk(2, dim=1)
            torch.mul(reset, hidden, out=reset_hidden[step])
            torch.tanh(
                torch.addmm(new_input[step], reset_hidden[step], new_weight_t), out=candidates[step]
            )
            new_hidden = torch.addcmul(candidates[step], keep, hidden - candidates[step])
            hidden = new_hidden if mask is None else torch.where(mask[step], new_hidden, hidden)
            output[step] = new_hidden
        if mask is not None:
            output.masked_fill_(~mask, 0.0)
        ctx.save_for_backward(weight_hh, previous, gates, candidates, reset_hidden, mask)
        ctx.has_bias = bias_hh is not None
        return output, hidden

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_output: Tensor | None, grad_hidden: Tensor | None):
        weight_hh, previous, gates, candidates, reset_hidden, mask = ctx.saved_tensors
        steps, batch, size = previous.shape
        gate_weight, new_weight = weight_hh[: 2 * size], weight_hh[2 * size :]
        grad_gates = previous.new_empty(steps, batch, 3 * size)  # d pre-activations (r, z, ñ)
        carried = previous.new_zeros(batch, size) if grad_hidden is None else grad_hidden
        for step in range(steps - 1, -1, -1):
            incoming = carried if grad_output is None else carried + grad_output[step]
            if mask is not None:
                incoming = torch.where(mask[step], incoming, 0.0)
            reset, keep = gates[step].chunk(2, dim=1)
            candidate, hidden = candidates[step], previous[step]
            grad_new = incoming * (1.0 - keep) * (1.0 - candidate * candidate)
            grad_reset_hidden = grad_new @ new_weight  # (B, H)
            grad_reset = grad_reset_hidden * hidden * reset * (1.0 - reset)
            grad_keep = incoming * (hidden - candidate) * keep * (1.0 - keep)
            grad_gates[step, :, :size] = grad_reset
            grad_gates[step, :, size : 2 * size] = grad_keep
            grad_gates[step, :, 2 * size :] = grad_new
            grad_previous = incoming * keep + grad_reset_hidden * reset
            grad_previous = torch.addmm(grad_previous, grad_gates[step, :, : 2 * size], gate_weight)
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
        return grad_gates, carried, grad_weight, grad_bias, None


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
    ) -> tuple[Tensor, Tensor]:
        steps, batch, size = projection.shape
        weight_t = weight_hh.t()
        inputs = projection if bias_hh is None else projection + bias_hh
        previous = projection.new_empty(steps, batch, size)
        activations = projection.new_empty(steps, batch, size)
        for step in range(steps):
            previous[step] = hidden
            pre = torch.addmm(inputs[step], hidden, weight_t)
            if nonlinearity == "tanh":
                torch.tanh(pre, out=activations[step])
            elif nonlinearity == "relu":
                torch.relu(pre, out=activations[step])
            else:
                activations[step] = pre
            new_hidden = activations[step]
            hidden = new_hidden if mask is None else torch.where(mask[step], new_hidden, hidden)
        output = activations if mask is None else activations.masked_fill(~mask, 0.0)
        ctx.save_for_backward(weight_hh, previous, activations, mask)
        ctx.nonlinearity = nonlinearity
        ctx.has_bias = bias_hh is not None
        return output, hidden.clone() if mask is None else hidden

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_output: Tensor | None, grad_hidden: Tensor | None):
        weight_hh, previous, activations, mask = ctx.saved_tensors
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
        return grad_pre, carried, grad_weight, grad_bias, None, None
