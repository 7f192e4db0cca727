"""Exercises of notebook 02 · Backprop and the training loop."""

import torch

from course import optim
from course.exercises import Exercise, register


def mul_backward(a: float, b: float, grad_out: float) -> tuple[float, float]:
    # out = a * b: d out / d a = b, d out / d b = a, each times the gradient arriving
    return b * grad_out, a * grad_out


def _torch_mul_backward(a: float, b: float, grad_out: float) -> tuple[float, float]:
    """torch's own backward of a * b, in float64."""
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b))
    (ta * tb).backward(torch.tensor(grad_out, dtype=torch.float64))
    return ta.grad.item(), tb.grad.item()


register(Exercise(
    name="02.mul_backward", notebook="02",
    prompt="Write the backward rule of out = a * b: return (dL/da, dL/db) given dL/dout.",
    hint="dL/da = dL/dout * b and dL/db = dL/dout * a (each input gets the *other* one).",
    reference=mul_backward,
    oracle=lambda a, b, g: _torch_mul_backward(a, b, g),
    cases=lambda: [(2.0, 3.0, 1.0), (-1.5, 4.0, 0.5), (0.0, 7.0, -2.0)],
    wrong=lambda a, b, g: (a * g, b * g),  # swapped
))


def finite_difference(w: float, b: float) -> tuple[float, float]:
    pts, h = optim.valley_points(), 1e-5
    loss = lambda w_, b_: optim.gradient_at(w_, b_, pts)[0]
    return ((loss(w + h, b) - loss(w - h, b)) / (2 * h),
            (loss(w, b + h) - loss(w, b - h)) / (2 * h))


register(Exercise(
    name="02.finite_difference", notebook="02",
    prompt="Estimate (dL/dw, dL/db) of the knob loss by central finite differences.",
    hint="(L(w + h, b) - L(w - h, b)) / (2h) with a small h such as 1e-5.",
    reference=finite_difference, cases=lambda: [(0.0, 0.0), (1.0, -2.0), (3.0, 1.0)],
    # the exact gradient from torch's backward pass
    oracle=lambda w, b: optim.gradient_at(w, b, optim.valley_points())[1:],
    wrong=lambda w, b: optim.gradient_at(w, b, optim.valley_points())[1:][::-1],
    rtol=1e-4,
))
