"""The shape of atb's code, read from its syntax tree (nothing is imported, so it is fast).

Every public function -- module level or method, name not starting with ``_``, and a public
class's ``__init__`` -- takes at most six parameters (``self``/``cls`` not counted) and no
``*args``/``**kwargs``: a call reads as typed values, never as a bag of options. Every function
is at most 60 lines. The 🤗 config and model classes follow transformers' signatures and are
left out of the parameter rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "atb"
MAX_PARAMS = 6
MAX_LINES = 60
FOLLOW_TRANSFORMERS = {"configuration_atb_bert.py", "modeling_atb_bert.py"}


def _functions(tree: ast.AST):
    """(qualified name, node, is public) of every function, methods and nested ones included;
    a method is public when it and its class are, and a public class's ``__init__`` is (the
    call that builds it); other dunders keep the signature their protocol gives them."""

    def walk(node, prefix: str, public: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                named_public = not child.name.startswith("_") or child.name == "__init__"
                yield name, child, public and named_public
                yield from walk(child, f"{name}.", False)  # nested functions are private
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.",
                                public and not child.name.startswith("_"))
            else:
                yield from walk(child, prefix, public)

    yield from walk(tree, "", True)


def _parameters(fn: ast.FunctionDef) -> list[str]:
    args = fn.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path, fn: ast.FunctionDef, name: str) -> str:
    return f"{path.relative_to(ROOT.parent)}:{fn.lineno} {name}"


def test_public_functions_take_few_typed_parameters():
    too_many, bags = [], []
    for path, tree in _modules():
        if path.name in FOLLOW_TRANSFORMERS:
            continue
        for name, fn, public in _functions(tree):
            if not public:
                continue
            params = _parameters(fn)
            if len(params) > MAX_PARAMS:
                too_many.append(f"{_where(path, fn, name)}: {len(params)} ({', '.join(params)})")
            if fn.args.vararg or fn.args.kwarg:
                bags.append(_where(path, fn, name))
    assert not too_many, f"more than {MAX_PARAMS} parameters:\n" + "\n".join(too_many)
    assert not bags, "*args or **kwargs in a public function:\n" + "\n".join(bags)


def test_functions_are_short():
    long = []
    for path, tree in _modules():
        for name, fn, _ in _functions(tree):
            first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
            lines = fn.end_lineno - first + 1
            if lines > MAX_LINES:
                long.append(f"{_where(path, fn, name)}: {lines} lines")
    assert not long, f"functions over {MAX_LINES} lines:\n" + "\n".join(long)


def test_the_rules_see_what_they_check(tmp_path):
    tree = ast.parse("class A:\n    def m(self, a, b, c, d, e, f, g): pass\n"
                     "    def _p(self, *a): pass\n    def __init__(self, x): pass\n"
                     "    def __exit__(self, *exc): pass\n"
                     "class _B:\n    def __init__(self, x): pass\n"
                     "def f(*, a, **kw):\n    def inner(*x): pass\n")
    found = {name: (public, _parameters(fn), bool(fn.args.vararg or fn.args.kwarg))
             for name, fn, public in _functions(tree)}
    assert found["A.m"] == (True, list("abcdefg"), False)
    assert found["A._p"][0] is False and found["f.inner"][0] is False
    assert found["A.__init__"] == (True, ["x"], False) and found["A.__exit__"][0] is False
    assert found["_B.__init__"][0] is False
    assert found["f"] == (True, ["a"], True)
