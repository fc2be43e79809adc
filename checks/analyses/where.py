"""The project's [[slices]] where-expressions, parsed and evaluated by mltriage itself (never run as code)."""

from __future__ import annotations

# A where-expression is parsed to a Python AST and evaluated here, node by node, over the frame's
# columns; nothing is handed to DataFrame.eval/query or to Python's eval. Allowed: column names (bare,
# or `backquoted` for names with spaces), literals, comparisons (chained too, `in`/`not in` a literal
# list), & | ~, and/or/not (element-wise), arithmetic, and the calls below. Everything else (other
# attributes, dunders, subscripts, lambdas, comprehensions, other calls, `@` local names) is refused
# before any of it runs, so a refused expression has no side effect.
ALLOWED_METHODS = {  # method -> keyword arguments it may take (all arguments must be literals)
    "isin": set(), "between": {"inclusive"}, "isna": set(), "notna": set(), "isnull": set(), "notnull": set(),
}
ALLOWED_STR_METHODS = {  # .str.<method>
    "contains": {"case", "na", "regex", "flags"}, "startswith": {"na"}, "endswith": {"na"},
    "match": {"case", "na", "flags"}, "fullmatch": {"case", "na", "flags"}, "len": set(), "lower": set(),
    "upper": set(), "casefold": set(), "strip": set(), "lstrip": set(), "rstrip": set(), "count": {"flags"},
    "isalpha": set(), "isalnum": set(), "isdigit": set(), "isdecimal": set(), "isnumeric": set(),
    "isspace": set(), "islower": set(), "isupper": set(), "istitle": set(),
}
ALLOWED_FUNCTIONS = {"len"}   # len(column): the length of each value (strings: characters)
MAX_EXPRESSION_CHARS = 10_000  # a where-expression is one line of a config file; beyond this it is a mistake
MAX_POWER_EXPONENT = 64        # a ** b on numbers: a larger literal exponent only builds huge integers
MAX_LITERAL_CHARS = 100_000    # 'x' * n: a literal string longer than this is refused
MAX_INT_BITS = 4096            # literal integer arithmetic beyond this many bits is refused (never needed)
ALLOWED_SUMMARY = ("column names, literals, comparisons, & | ~, and/or/not, arithmetic, .isin(), .between(), "
                   ".isna()/.notna(), .str.<predicate>() and len()")
_BACKQUOTE_PREFIX = "_mltriage_backquoted_"


class SliceError(Exception):
    pass


class _Refused(Exception):
    """A construct the evaluator does not allow; the message names it."""


def _replace_backquotes(expression: str) -> tuple[str, dict[str, str]]:
    """`a column` -> a placeholder name, outside string literals; returns the new text and the names."""
    out, names, i, quote = [], {}, 0, None
    while i < len(expression):
        ch = expression[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(expression):
                out.append(expression[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "`":
            end = expression.find("`", i + 1)
            if end < 0:
                raise _Refused("an unclosed backquote (write `column name`)")
            placeholder = f"{_BACKQUOTE_PREFIX}{len(names)}"
            names[placeholder] = expression[i + 1:end]
            out.append(placeholder)
            i = end
        else:
            out.append(ch)
        i += 1
    return "".join(out), names


def _literal(node):
    """The value of a literal node (numbers, strings, True/False/None, lists/tuples/sets of those)."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal(e) for e in node.elts]
    raise _Refused(f"{_describe(node)} as an argument (arguments must be literals: numbers, strings, lists)")


def _describe(node) -> str:
    """A short name of a construct for messages."""
    import ast

    names = {ast.Lambda: "a lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
             ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
             ast.Subscript: "a subscript [...]", ast.Dict: "a dict", ast.JoinedStr: "an f-string",
             ast.NamedExpr: "an assignment (:=)", ast.IfExp: "an if-else expression", ast.Starred: "a *argument",
             ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice"}
    for kind, text in names.items():
        if isinstance(node, kind):
            return text
    if isinstance(node, ast.Attribute):
        return f"the attribute .{node.attr}"
    if isinstance(node, ast.Call):
        return "a call"
    if isinstance(node, ast.Name):
        return f"the name {node.id}"
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r}"
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    return type(node).__name__


class _Evaluator:
    """Checks (evaluate=False) or evaluates one parsed where-expression over a frame."""

    def __init__(self, frame, backquoted: dict[str, str]):
        self.frame = frame
        self.backquoted = backquoted

    # --- the tree walk (check and evaluate share it, so what is allowed is what is evaluated) ----
    def run(self, node, evaluate: bool):
        import ast

        self.evaluate = evaluate
        if isinstance(node, ast.Expression):
            node = node.body
        return self.visit(node)

    def visit(self, node):
        import ast

        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (str, int, float, bool, type(None))):
                raise _Refused(_describe(node))
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return _literal(node)
        if isinstance(node, ast.Name):
            return self.column(node.id)
        if isinstance(node, ast.UnaryOp):
            value = self.visit(node.operand)
            if not self.evaluate:
                return None
            if isinstance(node.op, (ast.Invert, ast.Not)):
                return ~_as_bool(value) if _is_boolish(value) else (not value if isinstance(node.op, ast.Not) else ~value)
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, ast.BoolOp):
            values = [self.visit(v) for v in node.values]
            if not self.evaluate:
                return None
            out = _as_bool(values[0])
            for v in values[1:]:
                out = (out & _as_bool(v)) if isinstance(node.op, ast.And) else (out | _as_bool(v))
            return out
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            raise _Refused(f"the attribute .{node.attr}")
        raise _Refused(_describe(node))

    def column(self, name: str):
        if name.startswith("__"):
            raise _Refused(f"the name {name} (dunder names are never allowed)")
        column = self.backquoted.get(name, name)
        if self.frame is None:
            return None
        if column not in self.frame.columns:
            if name in ("True", "False", "None"):  # parsed as constants; kept for clarity
                return {"True": True, "False": False, "None": None}[name]
            raise SliceError(f"the expression could not be evaluated: no column {column!r} in the valid split")
        return self.frame[column] if self.evaluate else None

    def binop(self, node):
        import ast

        ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "truediv", ast.FloorDiv: "floordiv",
               ast.Mod: "mod", ast.Pow: "pow", ast.BitAnd: "and", ast.BitOr: "or", ast.BitXor: "xor"}
        kind = ops.get(type(node.op))
        if kind is None:
            raise _Refused(_describe(node))
        left, right = self.visit(node.left), self.visit(node.right)
        if not self.evaluate:
            return None
        _guard_size(kind, left, right)
        if kind in ("and", "or", "xor") and (_is_boolish(left) or _is_boolish(right)):
            left, right = _as_bool(left), _as_bool(right)
        import operator

        return getattr(operator, {"and": "and_", "or": "or_"}.get(kind, kind))(left, right)

    def compare(self, node):
        import ast
        import operator

        ops = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
               ast.Gt: operator.gt, ast.GtE: operator.ge}
        left = self.visit(node.left)
        result = None
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = _literal(right_node)
                if not isinstance(values, list):
                    raise _Refused("`in` with something other than a literal list, e.g. region in ['a', 'b']")
                right = values
                if self.evaluate:
                    part = _isin(left, values)
                    part = ~part if isinstance(op, ast.NotIn) else part
            elif type(op) in ops:
                right = self.visit(right_node)
                if self.evaluate:
                    part = ops[type(op)](left, right)
            else:
                raise _Refused(f"the comparison {type(op).__name__} (use ==, !=, <, <=, >, >=, in, not in)")
            if self.evaluate:
                result = part if result is None else (_as_bool(result) & _as_bool(part))
            left = right
        return result

    def call(self, node):
        import ast

        func = node.func
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise _Refused("*args or **kwargs in a call")
        if isinstance(func, ast.Name):
            if func.id not in ALLOWED_FUNCTIONS:
                raise _Refused(f"a call to {func.id}() (the only function allowed is len())")
            if len(node.args) != 1 or node.keywords:
                raise _Refused("len() with other than one argument")
            value = self.visit(node.args[0])
            if not self.evaluate:
                return None
            import pandas as pd

            if isinstance(value, pd.Series):
                return value.astype("string").str.len() if value.dtype == object or \
                    pd.api.types.is_string_dtype(value) else value.map(lambda v: len(str(v)))
            return len(value)
        if not isinstance(func, ast.Attribute):
            if isinstance(func, ast.Call):
                self.visit(func)  # name what is refused inside, e.g. getattr(...)(...)
            raise _Refused(f"a call of {_describe(func)}")
        name = func.attr
        owner = func.value
        if isinstance(owner, ast.Attribute) and owner.attr == "str":
            if name not in ALLOWED_STR_METHODS:
                raise _Refused(f"the method .str.{name}() (.str methods allowed: "
                               f"{', '.join(sorted(ALLOWED_STR_METHODS))})")
            allowed_keywords, target, accessor = ALLOWED_STR_METHODS[name], owner.value, True
        elif name in ALLOWED_METHODS:
            allowed_keywords, target, accessor = ALLOWED_METHODS[name], owner, False
        else:
            raise _Refused(f"the method .{name}()")
        for keyword in node.keywords:
            if keyword.arg not in allowed_keywords:
                raise _Refused(f"the keyword argument {keyword.arg}= of .{'str.' if accessor else ''}{name}()")
        args = [_literal(a) for a in node.args]
        kwargs = {k.arg: _literal(k.value) for k in node.keywords}
        if name in ("contains", "match", "fullmatch", "count") and not all(isinstance(a, (str, int)) for a in args):
            raise _Refused(f".str.{name}() with a non-string pattern")
        value = self.visit(target)
        if not self.evaluate:
            return None
        import pandas as pd

        if not isinstance(value, pd.Series):
            raise SliceError(f"the expression could not be evaluated: .{name}() applies to a column, not to "
                             f"{type(value).__name__}")
        if accessor:
            if not (value.dtype == object or pd.api.types.is_string_dtype(value)):
                raise SliceError(f"the expression could not be evaluated: .str.{name}() needs a text column, "
                                 f"not {value.dtype}")
            return getattr(value.str, name)(*args, **kwargs)
        return getattr(value, name)(*args, **kwargs)


def _guard_size(kind: str, left, right) -> None:
    """Refuse scalar arithmetic that would build a huge number or string (the evaluator must not hang)."""
    def scalar_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if kind == "pow" and isinstance(right, (int, float)) and not isinstance(right, bool):
        if abs(right) > MAX_POWER_EXPONENT or (scalar_int(left) and left.bit_length() * abs(right) > MAX_INT_BITS):
            raise _Refused(f"a power with exponent {right!r} (at most {MAX_POWER_EXPONENT}, results under "
                           f"{MAX_INT_BITS} bits)")
    if kind == "mul":
        for text, times in ((left, right), (right, left)):
            if isinstance(text, (str, list)) and scalar_int(times) and len(text) * abs(times) > MAX_LITERAL_CHARS:
                raise _Refused(f"a repeated literal longer than {MAX_LITERAL_CHARS} characters")
    if kind in ("mul", "add") and scalar_int(left) and scalar_int(right) and \
            max(left.bit_length(), right.bit_length()) > MAX_INT_BITS:
        raise _Refused(f"an integer of more than {MAX_INT_BITS} bits")


def _is_boolish(value) -> bool:
    import numpy as np
    import pandas as pd

    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, pd.Series):
        if pd.api.types.is_bool_dtype(value):
            return True
        if value.dtype == object:
            return pd.api.types.infer_dtype(value, skipna=True) in ("boolean", "empty")
    return False


def _as_bool(value):
    """A boolean Series (missing values False) or a bool, so &, |, ~ work element-wise."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.Series):
        if value.dtype == bool:
            return value
        if _is_boolish(value):
            return value.fillna(False).astype(bool)
        raise SliceError(f"the expression could not be evaluated: & | ~ and/or/not need True/False values, "
                         f"not {value.dtype}")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise SliceError(f"the expression could not be evaluated: & | ~ and/or/not need True/False values, "
                     f"not {type(value).__name__}")


def _isin(value, values: list):
    import pandas as pd

    if isinstance(value, pd.Series):
        return value.isin(values)
    return value in values


def check_where(expression: str, name: str | None = None) -> None:
    """Raise SliceError when the expression uses a construct that is not allowed (no data needed)."""
    tree, backquoted = _parse(expression, name)
    checker = _Evaluator(None, backquoted)
    try:
        checker.run(tree, evaluate=False)
    except _Refused as exc:
        where = f"[[slices]] '{name}': " if name else ""
        raise SliceError(f"{where}forbidden construct: {exc}. A where-expression may use {ALLOWED_SUMMARY}") from None


def _parse(expression: str, name: str | None):
    import ast

    where = f"[[slices]] '{name}': " if name else ""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise SliceError(f"{where}the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        text, backquoted = _replace_backquotes(expression)
        if "@" in _operators(text):
            raise _Refused("@ (local variables and the matrix operator are not available)")
        tree = ast.parse(text.strip(), mode="eval")
    except _Refused as exc:
        raise SliceError(f"{where}forbidden construct: {exc}. A where-expression may use {ALLOWED_SUMMARY}") from None
    except SyntaxError as exc:
        raise SliceError(f"{where}the expression could not be evaluated: invalid syntax "
                         f"({exc.msg} at column {exc.offset})") from None
    except (RecursionError, MemoryError, ValueError):
        raise SliceError(f"{where}the expression could not be evaluated: it is too deeply nested") from None
    return tree, backquoted


def _operators(text: str) -> set[str]:
    """The operator tokens of an expression (an '@' inside a string literal is just a character)."""
    import io
    import tokenize

    try:
        return {t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.OP}
    except (tokenize.TokenError, SyntaxError):
        return {"@"} if "@" in text else set()


def evaluate_where(frame, expression: str, name: str | None = None):
    """Boolean row mask of a [[slices]] where-expression over the valid split's columns.

    The whole expression is checked before anything runs; a refused construct raises SliceError with
    "forbidden construct" and its name (and the slice's `name` when given)."""
    import numpy as np
    import pandas as pd

    where = f"[[slices]] '{name}': " if name else ""
    tree, backquoted = _parse(expression, name)
    evaluator = _Evaluator(frame, backquoted)
    try:
        evaluator.run(tree, evaluate=False)
    except _Refused as exc:
        raise SliceError(f"{where}forbidden construct: {exc}. A where-expression may use {ALLOWED_SUMMARY}") from None
    except RecursionError:
        raise SliceError(f"{where}the expression could not be evaluated: it is too deeply nested") from None
    except SliceError as exc:
        raise SliceError(f"{where}{exc}") from None
    try:
        with np.errstate(all="ignore"):
            result = evaluator.run(tree, evaluate=True)
    except _Refused as exc:
        raise SliceError(f"{where}forbidden construct: {exc}. A where-expression may use {ALLOWED_SUMMARY}") from None
    except SliceError as exc:
        raise SliceError(f"{where}{exc}") from None
    except RecursionError:
        raise SliceError(f"{where}the expression could not be evaluated: it is too deeply nested") from None
    except Exception as exc:  # pandas raises many types for a bad expression; the message is what matters
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SliceError(f"{where}the expression could not be evaluated: {type(exc).__name__}: {message}") from None
    if isinstance(result, (bool, np.bool_)):
        raise SliceError(f"{where}the expression gives a single True/False, not one value per row")
    if not isinstance(result, pd.Series):
        raise SliceError(f"{where}the expression gives {type(result).__name__} values, not True/False per row")
    series = result
    if len(series) != len(frame):
        raise SliceError(f"{where}the expression gives {len(series)} values for {len(frame)} rows")
    if not (pd.api.types.is_bool_dtype(series) or series.isna().any() and
            pd.api.types.is_bool_dtype(series.dropna())):
        if not (series.dtype == object and _is_boolish(series)):
            raise SliceError(f"{where}the expression gives {series.dtype} values, not True/False per row")
    return series.astype(object).where(series.notna(), False).to_numpy(dtype=bool)
