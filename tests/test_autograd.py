"""course.autograd against torch.autograd (float64) on many random expressions."""

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from course.autograd import Value, depths, graph, topological_order

N_VARS = 3
UNARY = ["exp", "log", "tanh", "relu", "neg", "pow2", "pow3", "sqrt"]
BINARY = ["add", "sub", "mul", "div", "radd", "rmul"]

leaves = st.one_of(st.tuples(st.just("var"), st.integers(0, N_VARS - 1)),
                   st.tuples(st.just("const"), st.floats(-2, 2)))
expressions = st.recursive(
    leaves,
    lambda sub: st.one_of(st.tuples(st.sampled_from(UNARY), sub),
                          st.tuples(st.sampled_from(BINARY), sub, sub)),
    max_leaves=12)


def evaluate(expr, xs):
    """The same expression for Value and torch scalars (both have exp/log/tanh/relu).
    Domains are kept safe by construction: log and sqrt of x*x + 0.5, exp of tanh,
    division by y*y + 1."""
    op, *args = expr
    if op == "var":
        return xs[args[0]]
    if op == "const":
        return args[0]
    a = evaluate(args[0], xs)
    if isinstance(a, float):  # keep constants as graph nodes of the right kind
        a = a + 0 * xs[0]
    if op in UNARY:
        return {"exp": lambda: a.tanh().exp(), "log": lambda: (a * a + 0.5).log(),
                "tanh": lambda: a.tanh(), "relu": lambda: a.relu(), "neg": lambda: -a,
                "pow2": lambda: a ** 2, "pow3": lambda: a ** 3,
                "sqrt": lambda: (a * a + 0.5) ** 0.5}[op]()
    b = evaluate(args[1], xs)
    return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
            "div": lambda: a / (b * b + 1), "radd": lambda: 1.5 + a,
            "rmul": lambda: 0.5 * a * b}[op]()


@settings(max_examples=300, deadline=None)
@given(expressions, st.lists(st.floats(-3, 3), min_size=N_VARS, max_size=N_VARS))
def test_matches_torch_autograd(expr, values):
    ours = [Value(v) for v in values]
    theirs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    out, ref = evaluate(expr, ours), evaluate(expr, theirs)
    if isinstance(out, float):
        return  # a constant expression: nothing to differentiate
    assume(math.isfinite(out.data) and abs(out.data) < 1e12)
    assert out.data == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    out.backward()
    grads = torch.autograd.grad(ref, theirs, allow_unused=True)
    for v, g in zip(ours, grads):
        expected = 0.0 if g is None else g.item()
        assume(math.isfinite(expected))
        assert v.grad == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_shared_node_accumulates_gradient():
    a = Value(3.0)
    y = a * a + a  # dy/da = 2a + 1 = 7, a is used three times
    y.backward()
    assert a.grad == 7.0


def test_backward_twice_gives_the_same_gradient():
    a, b = Value(2.0), Value(-1.0)
    y = (a * b).tanh() + a.exp()
    y.backward()
    first = (a.grad, b.grad)
    y.backward()
    assert (a.grad, b.grad) == first


def test_relu_at_zero_matches_torch():
    a = Value(0.0)
    a.relu().backward()
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    t.relu().backward()
    assert a.grad == t.grad.item() == 0.0


def test_topological_order_and_graph():
    a, b = Value(1.0, label="a"), Value(2.0, label="b")
    c = a * b
    d = c + a
    order = topological_order(d)
    pos = {id(n): i for i, n in enumerate(order)}
    assert order[-1] is d and len(order) == 4
    assert all(pos[id(p)] < pos[id(n)] for n in order for p in n.parents)
    nodes, edges = graph(d)
    assert len(edges) == 4 and max(depths(nodes)) == 2


def test_deep_graph_does_not_hit_recursion_limit():
    x = Value(0.5)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 5000, rel=1e-9)


def test_bad_inputs_are_sentences():
    with pytest.raises(ValueError, match="positive"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="constant"):
        Value(2.0) ** Value(3.0)
