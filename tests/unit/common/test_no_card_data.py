"""We never carry card data (PCI scope): no proto field, column, log call or class field may hold
a card number, CVV or expiry. The gateway's hosted page takes the card; we only see its ids.

Log calls are read with `ast` from the services' source: the message, the arguments and the
`extra=` dict (keys and values). Class fields are checked too, because a log line can dump a
whole dataclass (`extra=dataclasses.asdict(report)`)."""

from __future__ import annotations

import ast
import importlib
import pathlib
import re
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[3]
SERVICE_SOURCES = ("cart_svc", "order_svc", "payment_svc", "enrollment_svc", "common", "edge")
CARD_WORDS = {"pan", "cvv", "cvc", "cardnumber", "cardnum", "ccnum", "ccnumber"}
CARD_PAIRS = {("card", "number"), ("card", "num"), ("card", "no"), ("card", "code"), ("card", "expiry"),
              ("card", "exp"), ("security", "code"), ("expiry", "month"), ("expiry", "year"), ("exp", "month"),
              ("exp", "year"), ("expiration", "month"), ("expiration", "year")}
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}


def card_terms(text: str) -> list[str]:
    """The card-data words in an identifier or a sentence: card_number, cardNumber, "card number", CVV2…"""
    tokens = [t.lower() for t in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", text)]
    return [t for t in tokens if t in CARD_WORDS] + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False) if (a, b) in CARD_PAIRS]


def _named(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def log_calls(tree: ast.AST) -> list[ast.Call]:
    """Calls of a logging method on `logging` itself or on a name bound to logging.getLogger(…)."""
    loggers = {"logging"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _named(node.value.func) == "getLogger":
            loggers.update(name for name in map(_named, node.targets) if name)
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS and _named(node.func.value) in loggers]


def words_in(node: ast.AST) -> Iterator[str]:
    """Every name, attribute, keyword and string inside `node` (message, arguments, extra= keys and values)."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.keyword) and inner.arg:
            yield inner.arg
        elif isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            yield inner.value
        elif (name := _named(inner)) is not None:
            yield name


def class_fields(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            yield from (item.target.id for item in node.body
                        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name))


def card_data_in_logs(tree: ast.AST) -> list[tuple[int, str]]:
    return [(call.lineno, term) for call in log_calls(tree) for word in words_in(call) for term in card_terms(word)]


def service_trees() -> dict[pathlib.Path, ast.AST]:
    paths = sorted(path for folder in SERVICE_SOURCES for path in (ROOT / folder).rglob("*.py"))
    return {path.relative_to(ROOT): ast.parse(path.read_text(), str(path)) for path in paths}


def proto_fields() -> Iterator[str]:
    """`package.Message.field` for every field of every message (nested ones too) generated from proto/."""
    for path in sorted((ROOT / "gen").rglob("*_pb2.py")):
        module = importlib.import_module(".".join(path.relative_to(ROOT / "gen").with_suffix("").parts))
        messages = list(module.DESCRIPTOR.message_types_by_name.values())
        while messages:
            message = messages.pop()
            messages.extend(message.nested_types)
            yield from (f"{message.full_name}.{field.name}" for field in message.fields)


def test_no_log_call_names_card_data() -> None:
    found = {str(path): hits for path, tree in service_trees().items() if (hits := card_data_in_logs(tree))}
    assert not found, found


def test_no_class_field_for_card_data() -> None:
    found = {str(path): fields for path, tree in service_trees().items()
             if (fields := [name for name in class_fields(tree) if card_terms(name)])}
    assert not found, found


def test_no_proto_field_for_card_data() -> None:
    fields = list(proto_fields())
    assert "checkout.v1.ErrorDetail.correlation_id" in fields  # the walk reaches the messages
    assert not [field for field in fields if card_terms(field.rsplit(".", 1)[1])]


def test_no_column_for_card_data() -> None:
    for path in sorted((ROOT / "migrations").rglob("*.py")):
        assert not card_terms(path.read_text()), path


def test_the_scan_sees_every_log_call() -> None:
    trees = service_trees()
    rpc_line = [set(words_in(call)) for call in log_calls(trees[pathlib.Path("common/interceptors.py")])]
    assert any({"rpc", "method", "code", "ms"} <= words for words in rpc_line)  # the extra= dict is read
    with_logger = [path for path, tree in trees.items() if "getLogger(__name__)" in ast.unparse(tree)]
    assert with_logger and all(log_calls(trees[path]) for path in with_logger), with_logger


def test_the_checker_would_notice() -> None:
    planted = ast.parse(
        "import logging\n"
        "_log = logging.getLogger(__name__)\n"
        "_log.info('paid', extra={'card_number': n})\n"
        "_log.warning('declined %s', request.cvv)\n"
        "_log.error(f'expired {card.expiry_month}')\n"
        "logging.info('the card number was %s', x)\n"
        "_log.debug('gateway said', extra={'detail': payload.cardNumber})\n"
    )
    assert [line for line, _ in card_data_in_logs(planted)] == [3, 4, 5, 6, 7]
    innocent = ast.parse("_log = logging.getLogger(__name__)\n_log.info('opened', extra={'span': s, 'expires_at': t,"
                         " 'payment_method': 'card', 'company': c})\n")
    assert card_data_in_logs(innocent) == []
    assert card_terms("string cvv = 3;") and card_terms("card_number text") and card_terms("exp_year")
    assert not card_terms("payment_method text") and not card_terms("expires_at") and not card_terms("span")
