"""A scalar autograd engine written for the course (notebook 02), in the spirit of
Karpathy's micrograd: each `Value` remembers the values it was computed from and how to
send a gradient back to them; `backward()` visits the graph in reverse topological order
and applies the chain rule once per node.

Supported: +, -, *, /, ** (constant exponent), exp, log, tanh, relu. Scalars only (no
tensors, no broadcasting); tests compare it with `torch.autograd` in float64.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable


class Value:
    """A scalar in a computation graph: `data` (forward value) and `grad` (dL/d this)."""

    def __init__(self, data: float, parents: tuple[Value, ...] = (), op: str = "",
                 label: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self.parents = parents
        self.op = op
        self.label = label
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        name = f"{self.label}=" if self.label else ""
        return f"Value({name}{self.data:.6g}, grad={self.grad:.6g})"

    # -- the operations: forward value, and the local rule that sends grad to parents --

    def __add__(self, other) -> Value:
        other = _as_value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def backward():  # d(a+b)/da = d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad
        out._backward = backward
        return out

    def __mul__(self, other) -> Value:
        other = _as_value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def backward():  # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = backward
        return out

    def __pow__(self, k: float) -> Value:
        if not isinstance(k, (int, float)):
            raise ValueError("Only a constant (int or float) exponent is supported.")
        out = Value(self.data ** k, (self,), f"**{k:g}")

        def backward():  # d(a^k)/da = k a^(k-1)
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def backward():  # d(e^a)/da = e^a
            self.grad += out.data * out.grad
        out._backward = backward
        return out

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log needs a positive number, got {self.data:g}.")
        out = Value(math.log(self.data), (self,), "log")

        def backward():  # d(ln a)/da = 1/a
            self.grad += out.grad / self.data
        out._backward = backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def backward():  # d(tanh a)/da = 1 - tanh(a)^2
            self.grad += (1 - out.data ** 2) * out.grad
        out._backward = backward
        return out

    def relu(self) -> Value:
        out = Value(max(0.0, self.data), (self,), "relu")

        def backward():  # subtle: at exactly 0 we use slope 0, as torch does
            self.grad += (self.data > 0) * out.grad
        out._backward = backward
        return out

    def __neg__(self) -> Value:
        return self * -1

    def __sub__(self, other) -> Value:
        return self + (-_as_value(other))

    def __truediv__(self, other) -> Value:
        return self * _as_value(other) ** -1

    def __radd__(self, other) -> Value:
        return self + other

    def __rmul__(self, other) -> Value:
        return self * other

    def __rsub__(self, other) -> Value:
        return _as_value(other) - self

    def __rtruediv__(self, other) -> Value:
        return _as_value(other) / self

    # -- backprop --

    def backward(self) -> None:
        """Fill `grad` of every node this value depends on, with d(self)/d(node)."""
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):  # every node after all the nodes that use it
            node._backward()


def _as_value(x) -> Value:
    return x if isinstance(x, Value) else Value(x)


def topological_order(root: Value) -> list[Value]:
    """Nodes of the graph below `root`, each after all of its parents (root last)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:  # iterative depth-first search: deep graphs do not hit the recursion limit
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node.parents if id(p) not in seen)
    return order


def graph(root: Value) -> tuple[list[Value], list[tuple[int, int]]]:
    """Nodes in topological order and edges (parent index, child index) for drawing."""
    nodes = topological_order(root)
    index = {id(n): i for i, n in enumerate(nodes)}
    edges = [(index[id(p)], index[id(n)]) for n in nodes for p in n.parents]
    return nodes, edges


def depths(nodes: Iterable[Value]) -> list[int]:
    """Longest distance from a leaf for each node (nodes in topological order)."""
    depth: dict[int, int] = {}
    for n in nodes:
        depth[id(n)] = 1 + max((depth[id(p)] for p in n.parents), default=-1)
    return [depth[id(n)] for n in nodes]
