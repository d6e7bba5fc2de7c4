"""The deterministic router: a request in plain words → a template and its arguments.

Used when no orchestrator model is configured. Choosing the template combines three signals,
all computed from what the templates declare (no per-template code here): TF-IDF cosine
similarity between the request and each template's text (intents, keywords, description, name)
over words and identifier sub-tokens with light stemming; the best single intent phrase; and
keyword hits. Arguments are then extracted for each declared parameter according to its
``extract`` hint: CamelCase class names, resource nouns ("user profile endpoint" → model
``User``, resource ``profile``), "with fields a, b: int", quoted strings, dotted modules, flags
from ``cues``. A request that matches nothing well still gets the closest templates with their
scores, never an exception.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from remora_lsp.templates.pym import ParamSpec, TemplateSpec

__all__ = ["Route", "TemplateRouter", "extract_arguments", "tokenize"]

MIN_SCORE = 0.12
_QUOTED_RE = re.compile(r"\"([^\"]+)\"|'([^']+)'|`([^`]+)`|“([^”]+)”")
_MODULE_RE = re.compile(r"\b[a-z_][a-z0-9_]*(?:\.(?!py\b)[a-z_][a-z0-9_]*)+\b")

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "for",
        "of",
        "with",
        "and",
        "or",
        "in",
        "on",
        "at",
        "by",
        "from",
        "into",
        "as",
        "is",
        "are",
        "be",
        "it",
        "this",
        "that",
        "these",
        "those",
        "please",
        "i",
        "we",
        "me",
        "us",
        "my",
        "our",
        "you",
        "your",
        "need",
        "want",
        "would",
        "like",
        "can",
        "could",
        "should",
        "let",
        "lets",
        "let's",
        "some",
        "new",
        "add",
        "create",
        "make",
        "write",
        "generate",
        "scaffold",
        "build",
        "set",
        "up",
        "give",
        "put",
        "get",
        "me",
        "also",
        "just",
        "which",
        "who",
        "whose",
        "has",
        "have",
        "having",
        "called",
        "named",
        "using",
        "use",
        "via",
        "so",
        "then",
        "there",
        "here",
        "one",
    ]
)
# Words that never name a resource or a class even when they sit next to an anchor.
_NOT_NOUN = _STOP | frozenset(
    [
        "basic",
        "simple",
        "quick",
        "small",
        "full",
        "complete",
        "proper",
        "typed",
        "standard",
        "rest",
        "restful",
        "http",
        "json",
        "pydantic",
        "fastapi",
        "python",
        "crud",
        "api",
        "endpoint",
        "endpoints",
        "router",
        "routes",
        "route",
        "routing",
        "tests",
        "test",
        "testing",
        "module",
        "file",
        "code",
        "class",
        "model",
        "models",
        "schema",
        "schemas",
        "settings",
        "config",
        "configuration",
        "dependency",
        "validator",
        "validators",
        "validation",
        "service",
        "app",
        "application",
        "all",
        "every",
        "each",
        "request",
        "response",
        "boilerplate",
        "skeleton",
        "stub",
        "pytest",
        "testclient",
        "entity",
        "object",
        "data",
        "field",
        "fields",
        "resource",
        "resources",
        "handler",
        "handlers",
        "operations",
        "suite",
        "dto",
        "new",
        "another",
        "basemodel",
        "basesettings",
        "prefix",
        "over",
        "across",
        "through",
        "behind",
        "object",
        "objects",
        "record",
        "records",
        "instance",
        "instances",
        "entries",
    ]
)
_ANCHORS = frozenset(
    [
        "endpoint",
        "endpoints",
        "router",
        "routes",
        "route",
        "routing",
        "api",
        "crud",
        "tests",
        "test",
        "testing",
        "schema",
        "schemas",
        "model",
        "models",
        "settings",
        "config",
        "configuration",
        "dependency",
        "validator",
        "validators",
        "validation",
        "resource",
        "resources",
        "handlers",
        "service",
        "operations",
        "suite",
        "class",
        "dto",
        "entity",
        "record",
        "basemodel",
        "basesettings",
    ]
)
_STOPPERS = frozenset(
    [
        "with",
        "that",
        "which",
        "where",
        "using",
        "from",
        "in",
        "into",
        "including",
        "having",
        "containing",
        "and",
        "to",
        "so",
        "over",
        "across",
        "through",
        "behind",
    ]
)
_VERBISH = _STOP | frozenset(
    [
        "create",
        "read",
        "update",
        "delete",
        "list",
        "get",
        "post",
        "put",
        "patch",
        "fetch",
        "input",
        "output",
        "request",
        "response",
        "requests",
        "responses",
        "expose",
        "define",
        "validate",
        "check",
        "ensure",
        "reject",
        "start",
        "bootstrap",
        "generate",
        "write",
        "test",
        "tests",
        "testing",
        "scaffold",
        "dependency",
        "depends",
        "inject",
        "settings",
        "config",
        "configuration",
        "record",
        "data",
        "typed",
        "model",
        "class",
        "schema",
        "schemas",
        "endpoint",
        "endpoints",
        "router",
        "routes",
        "app",
        "application",
        "new",
        "service",
        "settings",
        "environment",
        "smoke",
        "unit",
        "pydantic",
        "fastapi",
        "http",
        "api",
        "crud",
        "rest",
        "restful",
        "immutable",
        "frozen",
        "hashable",
        "dotenv",
        "json",
        "payload",
        "payloads",
        "dto",
        "dtos",
        "serializer",
        "serializers",
    ]
)
_FIELD_STOP = (
    frozenset(
        [
            "a",
            "an",
            "the",
            "and",
            "or",
            "with",
            "prefix",
            "field",
            "fields",
            "of",
            "to",
            "for",
            "validator",
            "validators",
            "validation",
        ]
    )
    | _ANCHORS
)
_TYPE_WORDS = {
    "int": "int",
    "integer": "int",
    "integers": "int",
    "number": "int",
    "str": "str",
    "string": "str",
    "text": "str",
    "float": "float",
    "decimal": "float",
    "bool": "bool",
    "boolean": "bool",
    "flag": "bool",
    "date": "date",
    "datetime": "datetime",
    "timestamp": "datetime",
    "list": "list[str]",
    "email": "str",
}


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case stemmed words and identifier sub-tokens (CamelCase, snake_case), no stopwords."""
    text = _MODULE_RE.sub(" ", _QUOTED_RE.sub(" ", text))  # names, not words of the request
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]{2,})", " ", text)
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", spaced.replace("_", " "))
    return [_stem(w.lower()) for w in words if w.lower() not in _STOP]


class _Tfidf:
    """A small TF-IDF model with sublinear term frequency and L2-normalised vectors."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        count = len(documents)
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(set(doc))
        self.idf = {t: math.log((1 + count) / (1 + n)) + 1.0 for t, n in df.items()}

    def vector(self, tokens: Iterable[str]) -> dict[str, float]:
        counts = Counter(t for t in tokens if t in self.idf)
        vec = {t: (1.0 + math.log(n)) * self.idf[t] for t, n in counts.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    @staticmethod
    def cosine(a: dict[str, float], b: dict[str, float]) -> float:
        if len(a) > len(b):
            a, b = b, a
        return sum(v * b.get(t, 0.0) for t, v in a.items())


@dataclass(frozen=True)
class Route:
    """The router's answer: a template (or None), its extracted arguments and the candidates."""

    template: str | None
    arguments: dict[str, Any]
    score: float
    candidates: tuple[tuple[str, float], ...]
    missing: tuple[str, ...] = field(default=())

    def to_data(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "template": self.template,
            "arguments": self.arguments,
            "score": round(self.score, 4),
            "candidates": [{"template": n, "score": round(s, 4)} for n, s in self.candidates],
            "missing": list(self.missing),
        }


class TemplateRouter:
    """Routes requests over a fixed set of templates (build one per catalog snapshot)."""

    def __init__(self, specs: Iterable[TemplateSpec]) -> None:
        self.specs = list(specs)
        self._docs: list[list[str]] = []
        self._phrases: list[list[list[str]]] = []
        self._keywords: list[set[str]] = []
        for spec in self.specs:
            stem = spec.name.split("/", 1)[-1]
            keywords = [_stem(k.lower()) for k in spec.keywords]
            doc = tokenize(" ".join(spec.intents)) + tokenize(spec.description)
            doc += tokenize(stem) * 2 + keywords * 2
            doc += [_stem(w) for p in spec.params for cue in p.cues[0] for w in tokenize(cue)]
            self._docs.append(doc)
            self._phrases.append([tokenize(p) for p in spec.intents])
            self._keywords.append(set(keywords))
        self._model = _Tfidf(self._docs + [p for ps in self._phrases for p in ps] or [[]])
        self._doc_vecs = [self._model.vector(d) for d in self._docs]
        self._phrase_vecs = [[self._model.vector(p) for p in ps] for ps in self._phrases]

    def scores(self, request: str) -> list[tuple[str, float]]:
        """Every template with its score for ``request``, best first."""
        tokens = tokenize(request)
        query = self._model.vector(tokens)
        present = set(tokens)
        result = []
        for i, spec in enumerate(self.specs):
            doc = self._model.cosine(query, self._doc_vecs[i])
            phrase = max((self._model.cosine(query, v) for v in self._phrase_vecs[i]), default=0.0)
            hits = len(present & self._keywords[i])
            score = 0.55 * doc + 0.25 * phrase + 0.2 * min(hits, 3) / 3
            result.append((spec.name, score))
        result.sort(key=lambda item: (-item[1], item[0]))
        return result

    def route(self, request: str, *, top: int = 3) -> Route:
        """The best template and its arguments, or (below ``MIN_SCORE``) only the candidates."""
        ranked = self.scores(request)
        candidates = tuple(ranked[:top])
        if not ranked or ranked[0][1] < MIN_SCORE:
            return Route(None, {}, ranked[0][1] if ranked else 0.0, candidates)
        name, score = ranked[0]
        spec = next(s for s in self.specs if s.name == name)
        arguments = extract_arguments(request, spec.params)
        missing = tuple(p.name for p in spec.params if p.required and p.name not in arguments)
        return Route(name, arguments, score, candidates, missing)


# -- argument extraction -------------------------------------------------------------------------


def _pascal(words: Sequence[str]) -> str:
    return "".join(w[:1].upper() + w[1:] for w in words)


def _snake(text: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _singular(word: str) -> str:
    lower = word.lower()
    if lower.endswith("ies") and len(lower) > 4:
        return word[:-3] + "y"
    if lower.endswith(("ses", "xes", "ches", "shes", "zes")) and len(lower) > 4:
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")) and len(lower) > 3:
        return word[:-1]
    return word


_CAMEL_RE = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b|\b[A-Z][a-z0-9]{2,}\b")
_PATH_RE = re.compile(r"\b([a-z_][a-z0-9_]*(?:/[a-z_][a-z0-9_]*)*)\.py\b")


@dataclass
class _Request:
    text: str
    quoted: list[str]
    bare: str  # text with quoted parts replaced by spaces
    words: list[str]  # original-case words of the bare text, punctuation dropped

    @classmethod
    def parse(cls, text: str) -> _Request:
        quoted = [next(g for g in m.groups() if g) for m in _QUOTED_RE.finditer(text)]
        bare = _QUOTED_RE.sub(" ", text)
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*", bare)
        return cls(text, quoted, bare, words)


def _class_names(req: _Request) -> list[str]:
    """CamelCase or capitalised words that are not the request's first word or a library name."""
    found = []
    for match in re.finditer(r"\b([A-Z][A-Za-z0-9]*)\s+(?:class|model)\b", req.bare):
        if match.group(1).lower() not in {"pydantic", "fastapi", "basemodel", "basesettings"}:
            found.append(match.group(1))
    for quoted in req.quoted:
        if re.fullmatch(r"[A-Z][A-Za-z0-9]*", quoted):
            found.append(quoted)
    for match in _CAMEL_RE.finditer(req.bare):
        word = match.group(0)
        if (
            word.lower() in _VERBISH
            or _stem(word.lower()) in _VERBISH
            or word.lower()
            in {"testclient", "basemodel", "basesettings", "pytest", "apirouter", "fastapi"}
        ):
            continue
        found.append(word)
    return found


def _noun_phrases(req: _Request) -> list[list[str]]:
    """Word groups that name the thing: after 'for/of/to manage' or just before an anchor word."""
    words = req.words
    lower = [w.lower() for w in words]
    phrases: list[list[str]] = []

    def grab(start: int, step: int) -> list[str]:
        out: list[str] = []
        i = start
        while 0 <= i < len(words) and len(out) < 3:
            w = lower[i]
            if w in _STOPPERS or w in _ANCHORS or (w in _NOT_NOUN and w not in {"data"}):
                if out or w not in {"the", "a", "an", "our", "my", "each", "every", "all", "new"}:
                    break
            elif not re.fullmatch(r"[a-z][a-z0-9_]*", w) or (w in _TYPE_WORDS and out):
                break
            else:
                out.append(words[i])
            i += step
        return out if step > 0 else out[::-1]

    for i, w in enumerate(lower):
        if w in {"for", "of", "manage", "managing", "around", "about"} and i + 1 < len(words):
            got = grab(i + 1, 1)
            if got:
                phrases.append(got)
    for i, w in enumerate(lower):
        if w in {"create", "delete", "update", "fetch", "list", "manage", "expose", "edit"} and (
            i + 1 < len(words)
        ):
            got = grab(i + 1, 1)
            if got and i + 1 + len(got) == len(words):
                phrases.append(got)
    for i, w in enumerate(lower):
        if w in _ANCHORS and i > 0:
            got = grab(i - 1, -1)
            if got:
                phrases.append(got)
    return phrases


def _fields(req: _Request) -> list[str] | None:
    for pattern in (
        r"\b(?:fields?\s*:|(?:fields|attributes|properties|columns|variables|vars)\s*[:=]?)\s+"
        r"(?:(?:called|named|of|like)\s+)?(.+)",
        r"\b(?:with|having|containing|holding|including)\s+(.+)",
    ):
        match = re.search(pattern, req.text, re.IGNORECASE)
        found = _field_list(match.group(1)) if match else None
        if found:
            return found
    snake = [w for w in req.words if "_" in w.strip("_") and w.islower()]
    return snake if len(snake) >= 2 else None


_FIELD_LIST_END = r"[.;]\s|\s(?:for|in|under|from|using|prefixed|prefix|where|that|with)\s|$"


def _field_list(text: str) -> list[str] | None:
    tail = re.split(_FIELD_LIST_END, text)[0]
    tail = re.sub(r"\b(?:fields?|attributes?|properties|columns?)\b", " ", tail, flags=re.I)
    items = [i.strip() for i in re.split(r",|\band\b|&|\+", tail) if i.strip()]
    fields: list[str] = []
    for item in items:
        item = re.sub(r"^(?:an?|the)\s+", "", item.strip(" `'\""), flags=re.I)
        m = re.fullmatch(
            r"([A-Za-z_][A-Za-z0-9_ ]*?)\s*(?::|\bas\b|\bof type\b)\s*([A-Za-z_][\w\[\], |.]*)",
            item,
        ) or re.fullmatch(r"([A-Za-z_][A-Za-z0-9_ ]*?)\s*\(\s*([A-Za-z_][\w\[\], |.]*)\s*\)", item)
        if m:
            name, kind = m.group(1), m.group(2).strip()
            kind = _TYPE_WORDS.get(kind.lower(), kind)
        else:
            parts = item.split()
            if len(parts) == 2 and parts[0].lower() in _TYPE_WORDS and parts[0].lower() != "email":
                name, kind = parts[1], _TYPE_WORDS[parts[0].lower()]
            elif len(parts) == 1:
                name, kind = item, ""
            else:
                continue
        name = _snake(re.sub(r"^(?:an?|the)\s+", "", name.strip(), flags=re.I))
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or name in _FIELD_STOP:
            continue
        fields.append(f"{name}: {kind}" if kind else name)
    return fields or None


def _module(req: _Request) -> str | None:
    for quoted in req.quoted:
        if re.fullmatch(r"\.*[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+", quoted):
            return quoted
    match = _MODULE_RE.search(req.bare)
    return match.group(0) if match else None


def _named(req: _Request, taken: set[str]) -> str | None:
    match = re.search(
        r"\b(?:called|named|name it|call it)\s+[`'\"]?([A-Za-z_][A-Za-z0-9_]*)", req.text
    )
    if match:
        return match.group(1)
    for i, word in enumerate(req.words):
        after = req.words[i + 1].lower() if i + 1 < len(req.words) else ""
        if after in {"header", "field", "attribute"} or word in taken:
            continue
        if "_" in word.strip("_") and word.islower():
            return word
    for quoted in req.quoted:
        if re.fullmatch(r"[a-z_][a-z0-9_]*", quoted):
            return quoted
    return None


def _field_name(req: _Request) -> str | None:
    text = req.bare
    patterns = (
        r"\b(?:the\s+)?([A-Za-z_][A-Za-z0-9_]*)\s+(?:field|header|attribute|value)\b",
        r"\b(?:field|header)\s+[`'\"]?([A-Za-z_][A-Za-z0-9_-]*)",
        r"\b(?:validates?|checks?|ensures?|validating|checking|ensuring|validation of|"
        r"validation for)\s+(?:that\s+)?"
        r"(?:the\s+)?([a-z_][a-z0-9_]*)",
    )
    for pattern in patterns:
        for match in re.finditer(pattern, text, re.IGNORECASE):
            word = match.group(1)
            if not word.islower() or word.endswith(("ed", "ing")):
                continue
            if word not in _VERBISH and word not in _FIELD_STOP and word not in {"value", "auth"}:
                return _snake(word.replace("-", "_"))
    for quoted in req.quoted:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", quoted):
            return _snake(quoted.replace("-", "_"))
    return None


def _prefix(req: _Request) -> str | None:
    for token in [*req.quoted, *req.words]:
        if re.fullmatch(r"[A-Z][A-Z0-9]*_", token):
            return token
    match = re.search(
        r"\bprefix(?:ed)?\s+(?:with\s+)?[`'\"]?([A-Za-z][A-Za-z0-9_]*)", req.text, re.I
    )
    if match:
        value = match.group(1).upper()
        return value if value.endswith("_") else value + "_"
    return None


def _list(req: _Request) -> list[str] | None:
    match = re.search(
        r"\b(?:routers?|including|includes|include|mounting|mount|mounts)\s*[:]?\s+(.+)",
        req.bare,
        re.IGNORECASE,
    )
    if match is None:
        return None
    tail = re.split(r"[.;]\s|\s(?:for|in|under|from|using|called|named)\s|$", match.group(1))[0]
    tail = re.sub(r"\b(?:routers?|modules?|the)\b", " ", tail, flags=re.I)
    items = [i.strip() for i in re.split(r",|\band\b|&", tail) if i.strip()]
    items = [_snake(i) for i in items if len(i.split()) == 1]
    items = [i for i in items if re.fullmatch(r"[a-z_][a-z0-9_]*", i) and i not in _STOP]
    return items or None


def _flag(req: _Request, param: ParamSpec) -> bool | None:
    text = " " + re.sub(r"\s+", " ", req.text.lower()) + " "
    yes, no = param.cues
    if any(f" {cue} " in text or f" {cue}," in text or f" {cue}." in text for cue in no):
        return False
    if any(re.search(rf"\b{re.escape(cue)}\b", text) for cue in yes):
        return True
    return None


def extract_arguments(request: str, params: Sequence[ParamSpec]) -> dict[str, Any]:
    """Values for the declared parameters that the request states (defaults are left out)."""
    req = _Request.parse(request)
    hints = {p.extract for p in params}
    classes = _class_names(req)
    phrases = _noun_phrases(req)
    args: dict[str, Any] = {}
    phrase = phrases[0] if phrases else []
    ordered = sorted(params, key=lambda p: p.extract == "name")
    for param in ordered:
        value: Any = None
        if param.extract == "class":
            if classes:
                value = classes[0]
            elif phrase and param.required:
                # With a separate resource noun, "user profile" is model User, resource profile.
                words = phrase[:1] if "noun" in hints and len(phrase) > 1 else phrase
                value = _pascal([_singular(w.lower()) for w in words])
        elif param.extract == "noun":
            if phrase:
                value = _snake(_singular(phrase[-1]))
            elif classes:
                value = _snake(classes[0])
        elif param.extract == "fields":
            value = _fields(req)
        elif param.extract == "quoted":
            value = req.quoted[0] if req.quoted else None
            if (
                value is not None
                and param.extract == "quoted"
                and _CAMEL_RE.fullmatch(value)
                and ("class" in hints)
            ):
                value = req.quoted[1] if len(req.quoted) > 1 else None
        elif param.extract == "module":
            value = _module(req)
        elif param.extract == "name":
            value = _named(req, {v for v in args.values() if isinstance(v, str)})
        elif param.extract == "field":
            value = _field_name(req)
        elif param.extract == "prefix":
            value = _prefix(req)
        elif param.extract == "path":
            match = _PATH_RE.search(req.bare)
            value = match.group(1) if match else None
        elif param.extract == "list":
            value = _list(req)
        elif param.extract == "flag":
            value = _flag(req, param)
        if value is None or value == [] or value == "":
            continue
        if param.pattern and isinstance(value, str) and not re.fullmatch(param.pattern, value):
            continue
        if param.type == "identifier" and isinstance(value, str) and not value.isidentifier():
            continue
        args[param.name] = value
    return {p.name: args[p.name] for p in params if p.name in args}
