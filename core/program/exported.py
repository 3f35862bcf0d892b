"""A whole exported program a user brings (a `.pt2` from torch.export.save): read, checked, made runnable.

Why not torch.export.load. Read in torch 2.14 (torch/export/__init__.py `load`,
torch/export/pt2_archive/_package.py `load_pt2`, `_load_state_dict`, `_load_constants`, and
torch/_export/serde/serialize.py), it can run code a crafted file carries, in six ways:

1. pickles: a weight or constant marked `use_pickle` in the file's JSON is read with
   `torch.load(weights_only=False)`; an "opaque object" constant with `pickle.loads`; a torchbind
   object with `torch._C._pickle_load_obj`; the sample inputs (always read) by
   `deserialize_torch_artifact`, which falls back to `torch.load(weights_only=False)` whenever the
   restricted loader refuses them; the pre-2.8 layout's members likewise.
2. native code: a `data/aotinductor/` member is a compiled shared library, loaded and run.
3. `sympy.sympify` (an `eval`) of every symbolic-shape expression string in the graph's JSON.
4. operator names resolved by walking attributes from `torch`, `math` and `operator`: any
   callable reached (`torch.os.system`) becomes a node that the forward pass calls.
5. `guards_code`: strings from the file that `ExportedProgram.module()` compiles with `exec`.
6. pytree specs (torch/utils/_pytree.py): a defaultdict's factory or an enum in a spec's context names
   a module that `importlib.import_module` imports.

The lab's rule is that an upload is never unpickled beyond torch.load(weights_only=True) and never
runs code, so this module reads the archive itself and hands torch's deserializer only what it has
checked: raw little-endian tensors it builds itself (no pickled member is ever read), sample inputs
read with weights_only=True, and a graph JSON in which every operator is an ATen tensor operator
that takes no file name or message, every shape expression parses as plain arithmetic over shape
symbols, every pytree spec is made of tuples, lists and dicts, and guards_code is dropped (the
module is built with check_guards=False, so no guard code is compiled either; shapes are checked
by the forward pass on the dataset's images). Anything else is refused in one line: a file that
needs more is not one the lab runs. tests/test_exported_program.py checks that crafted files for
ways 1, 3, 4 and 5 leave their marker uncreated here (and that torch.export.load creates it for 1, 3
and 5), and that a file with an AOTInductor member (2) is refused by that member's name.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import operator
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.foundation.errors import UserError
from core.foundation.models.weights_file import MAX_WEIGHTS_BYTES, REFUSED_BY_LOADER, _size_text

MAX_PROGRAM_BYTES = MAX_WEIGHTS_BYTES  # the same 1 GiB as a weights file: bytes and tensors fit in memory twice
NOT_A_PROGRAM = "is not an exported program saved by torch.export.save"
ZIP_LOCAL_HEADER = b"PK\x03\x04"

# The members a torch.export.save archive holds (below its one top folder), and nothing else.
FIXED_MEMBERS = {
    "archive_format",
    "archive_version",
    "byteorder",
    ".data/version",
    ".data/serialization_id",
    "models/model.json",
    "data/weights/model_weights_config.json",
    "data/constants/model_constants_config.json",
    "data/sample_inputs/model.pt",
}
TENSOR_MEMBER = re.compile(r"^data/(weights/weight_|constants/tensor_)\d+$")
EXTRA_MEMBER = re.compile(r"^extra/[^/]+$")  # text files saved beside the program; never read
# What other members mean, for the refusal.
FOREIGN_MEMBERS = (
    ("data/aotinductor/", "a compiled AOTInductor library (native code, which the lab never loads from an upload)"),
    ("data/executorch/", "an ExecuTorch program"),
    ("data/mtia", "MTIA kernels"),
    ("xl_model_weights/", "weights kept outside the archive"),
    ("data/weights/model.pt", "weights as one pickle (the layout of torch before 2.8; save the program again with this torch)"),
    ("data/constants/model.pt", "constants as one pickle (the layout of torch before 2.8; save the program again with this torch)"),
    ("data/constants/custom_obj_", "a pickled TorchScript object"),
    ("data/constants/opaque_obj_", "a pickled Python object"),
    ("models/", "more than one program (save one with torch.export.save)"),
)

# ATen operators may take a string only for these arguments (a mode name): an operator with any
# other string argument reads or writes files or prints (aten::save, aten::from_file, aten::_print).
MODE_STRING_ARGUMENTS = {
    "equation",
    "rounding_mode",
    "approximate",
    "reduce",
    "padding_mode",
    "mode",
    "padding",
    "assert_msg",
    "interpolation_mode",
    "indexing",
    "side",
    "memory_format",
    "pad_mode",
    "padding_side",
}
# The Python-level operators a graph may call on shape symbols (torch's own _SYM_OPS) and getitem.
SYM_OPERATORS = {"getitem"}
# Shape expressions: sympy constructors and torch's sympy functions, shape symbols (s0, u3, ...), assumptions.
SYMPY_NAMES = {
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs", "Eq", "Ne", "Lt", "Le", "Gt", "Ge",
    "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "Equality", "Unequality",
    "And", "Or", "Not", "true", "false", "True", "False", "oo", "zoo", "nan", "floor", "ceiling", "sqrt", "Piecewise",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift",
    "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt",
    "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "OpaqueUnaryFn_sqrt", "BitwiseFn_bitwise_and", "BitwiseFn_bitwise_or",
}  # fmt: skip
SYMBOL_NAME = re.compile(r"^[a-z]{1,8}\d{1,9}$")  # s77, u0, zuf3: how torch names shape symbols
ASSUMPTIONS = {"positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite", "zero", "nonzero", "even", "odd", "commutative", "rational"}
ALLOWED_EXPRESSION_NODES = (
    ast.Expression, ast.Call, ast.Name, ast.Load, ast.Constant, ast.keyword, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.And, ast.Or,
)  # fmt: skip
MAX_EXPRESSION_CHARS = 4000
PYTREE_TYPES = {None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict"}


@dataclass(frozen=True, eq=False)
class ProgramFile:
    """A checked exported program and what the file says about it."""

    name: str  # the file's name, as every message shows it
    sha256: str
    file_bytes: int
    weights_bytes: int  # bytes of its parameters and buffers (the tensors torch.export.save stored)
    constants_bytes: int  # bytes of lifted tensor constants
    program: torch.export.ExportedProgram = field(repr=False)
    example_input_shape: list[int] | None  # the first sample input's shape, as exported
    torch_version: str  # the torch that saved it
    operators: list[str]  # the distinct ATen operators its graph calls

    def module(self) -> nn.Module:
        """A fresh runnable module of the program (its own parameters, copied): eval() works on it."""
        return runnable_module(self.program)

    def summary(self) -> dict:
        return {
            "file": self.name,
            "sha256": self.sha256,
            "file_bytes": self.file_bytes,
            "weights_bytes": self.weights_bytes,
            "constants_bytes": self.constants_bytes,
            "parameters": sum(t.numel() for t in self.program.state_dict.values() if isinstance(t, nn.Parameter)),
            "example_input_shape": self.example_input_shape,
            "saved_with_torch": self.torch_version,
            "operators": self.operators,
        }


def read_program(path: Path) -> ProgramFile:
    """The exported program at `path` (CLI FILE); its size is checked before it is read."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no exported program at {path}")
    _check_size(path.name, path.stat().st_size)
    return read_program_bytes(path.name, path.read_bytes())


def read_program_bytes(name: str, data: bytes) -> ProgramFile:
    """The exported program `name` whose bytes are `data` (an upload), checked as the module docstring says."""
    _check_size(name, len(data))
    members, prefix = _open_archive(name, data)
    _check_members(name, members)
    format_value = members.get("archive_format", b"").decode("utf-8", "replace").strip()
    if format_value != "pt2":
        raise UserError(f"{name} {NOT_A_PROGRAM} (its archive_format is {format_value or 'missing'!r}, not 'pt2')")
    from torch.export.pt2_archive.constants import ARCHIVE_VERSION_VALUE

    version = members.get("archive_version", b"").decode("utf-8", "replace").strip()
    if version != ARCHIVE_VERSION_VALUE:
        raise UserError(f"{name} is a .pt2 archive of version {version!r}; this torch ({torch.__version__}) reads version {ARCHIVE_VERSION_VALUE!r}: save it again with this torch")
    byteorder = members.get("byteorder", b"little").decode("utf-8", "replace").strip()
    if byteorder != "little":
        raise UserError(f"{name} stores its tensors {byteorder}-endian; the lab reads little-endian archives only")
    for required in ("models/model.json", "data/weights/model_weights_config.json", "data/constants/model_constants_config.json", "data/sample_inputs/model.pt"):
        if required not in members:
            raise UserError(f"{name} {NOT_A_PROGRAM} (it has no {required})")
    state_dict, weights_bytes = _read_tensors(name, members, "data/weights/", _json_member(name, members, "data/weights/model_weights_config.json"), "weight_")
    constants, constants_bytes = _read_tensors(name, members, "data/constants/", _json_member(name, members, "data/constants/model_constants_config.json"), "tensor_")
    example_inputs = _read_sample_inputs(name, members["data/sample_inputs/model.pt"])
    tree = _json_member(name, members, "models/model.json")
    try:
        operators = check_program_json(name, tree)
    except RecursionError:
        raise UserError(f"{name} is damaged: its models/model.json is nested deeper than any graph torch writes") from None
    program = _deserialize(name, tree, state_dict, constants, example_inputs)
    first = example_inputs[0][0] if example_inputs[0] else None
    return ProgramFile(
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        file_bytes=len(data),
        weights_bytes=weights_bytes,
        constants_bytes=constants_bytes,
        program=program,
        example_input_shape=list(first.shape) if isinstance(first, torch.Tensor) else None,
        torch_version=str(tree.get("torch_version") or "unknown"),
        operators=operators,
    )


def runnable_module(program: torch.export.ExportedProgram) -> nn.Module:
    """program.module() without compiled guards (check_guards=False: the input checks run as a
    pre-hook from the range constraints), with eval()/train() allowed the way torchao allows them
    (on a program exported in training mode, eval() switches its dropout and batch norm to eval)."""
    import copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchao's deprecation notice on import
        from torchao.quantization.pt2e import allow_exported_model_train_eval

    module = program.module(check_guards=False)
    for name, value in list(module.named_parameters()) + list(module.named_buffers()):
        # The module shares its tensors with the program: a pruned copy must not change the program.
        owner, _, attribute = name.rpartition(".")
        target = module.get_submodule(owner) if owner else module
        cloned = copy.deepcopy(value)
        setattr(target, attribute, cloned)
    allow_exported_model_train_eval(module)
    module.eval()
    return module


# ------------------------------------------------------------------------------------ the archive


def _check_size(name: str, size: int) -> None:
    if size == 0:
        raise UserError(f"{name} is empty")
    if size > MAX_PROGRAM_BYTES:
        raise UserError(f"{name} is {_size_text(size)}; the lab reads exported programs of at most {_size_text(MAX_PROGRAM_BYTES)}")


def _open_archive(name: str, data: bytes) -> tuple[dict[str, bytes], str]:
    """Every member's bytes by its name below the archive's one top folder."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        if data.startswith(ZIP_LOCAL_HEADER):
            raise UserError(f"{name} is truncated (a zip archive whose end is missing)") from None
        raise UserError(f"{name} {NOT_A_PROGRAM} (not a zip archive)") from None
    if sum(info.file_size for info in infos) > 2 * MAX_PROGRAM_BYTES:
        raise UserError(f"{name} unpacks to more than {_size_text(2 * MAX_PROGRAM_BYTES)}; the lab reads exported programs of at most {_size_text(MAX_PROGRAM_BYTES)}")
    tops = {info.filename.split("/", 1)[0] for info in infos}
    if len(tops) != 1 or any("/" not in info.filename for info in infos):
        raise UserError(f"{name} {NOT_A_PROGRAM} (a zip archive without the one top folder torch writes)")
    prefix = tops.pop() + "/"
    members: dict[str, bytes] = {}
    for info in infos:
        if info.is_dir():
            continue
        try:
            members[info.filename[len(prefix) :]] = archive.read(info)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
            raise UserError(f"{name} is truncated or damaged (its member {info.filename} cannot be read: {error})") from None
    if "data.pkl" in members:
        raise UserError(f"{name} {NOT_A_PROGRAM} (it is a torch.save file, such as a state dict: bring a state dict with --model and --weights instead)")
    if "models/model.json" not in members and not any(member.startswith("models/") for member in members):
        raise UserError(f"{name} {NOT_A_PROGRAM} (a zip archive with no models/ program in it)")
    return members, prefix


def _check_members(name: str, members: dict[str, bytes]) -> None:
    for member in sorted(members):
        if member in FIXED_MEMBERS or TENSOR_MEMBER.match(member) or EXTRA_MEMBER.match(member):
            continue
        meaning = next((what for start, what in FOREIGN_MEMBERS if member.startswith(start)), None)
        if meaning is None:
            raise UserError(f"{name} holds {member}, which torch.export.save does not write for a program; the lab reads only plain exported programs")
        raise UserError(f"{name} holds {member}: {meaning}; the lab reads only plain exported programs (graph JSON and raw tensors)")


def _json_member(name: str, members: dict[str, bytes], member: str) -> dict:
    try:
        value = json.loads(members[member].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise UserError(f"{name} is damaged: its {member} is not JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(value, dict):
        raise UserError(f"{name} is damaged: its {member} is not a JSON object")
    return value


def _read_tensors(name: str, members: dict[str, bytes], folder: str, config: dict, file_prefix: str) -> tuple[dict[str, torch.Tensor], int]:
    """The tensors a payload config names, built from their raw bytes (aliases kept: two names of
    one file share its storage). A pickled entry is refused, never read."""
    from torch._export.serde.schema import Layout
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    entries = config.get("config")
    if not isinstance(entries, dict):
        raise UserError(f"{name} is damaged: its {folder} config has no 'config' table")
    storages: dict[str, torch.Tensor] = {}
    tensors: dict[str, torch.Tensor] = {}
    for fqn, entry in entries.items():
        try:
            path_name, meta = entry["path_name"], entry["tensor_meta"]
            if entry.get("use_pickle") or not isinstance(path_name, str) or not path_name.startswith(file_prefix) or meta is None:
                raise UserError(f"{name} stores {fqn!r} as a pickle ({path_name}); the lab never unpickles a program's tensors (only raw tensors are read)")
            if meta.get("layout") != Layout.Strided.value:
                raise UserError(f"{name} stores {fqn!r} in a sparse or other non-strided layout; the lab reads dense tensors only")
            dtype = _SERIALIZE_TO_TORCH_DTYPE.get(_scalar_type(meta["dtype"]))
            if dtype is None or dtype.is_complex or dtype in (torch.uint16, torch.uint32, torch.uint64):
                raise UserError(f"{name} stores {fqn!r} with dtype code {meta['dtype']}, which the lab does not read")
            sizes = [_as_int(value) for value in meta["sizes"]]
            strides = [_as_int(value) for value in meta["strides"]]
            offset = _as_int(meta["storage_offset"])
            member = folder + path_name
            if member not in members:
                raise UserError(f"{name} is damaged: {fqn!r} names {member}, which is not in the archive")
            if path_name not in storages:
                raw = members[member]
                element = torch.empty((), dtype=dtype).element_size()
                if len(raw) % element:
                    raise UserError(f"{name} is damaged: {member} holds {len(raw)} bytes, not a whole number of {dtype} elements")
                storages[path_name] = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            storage = storages[path_name]
            if not raw_fits(storage, sizes, strides, offset):
                raise UserError(f"{name} is damaged: {fqn!r} of shape {sizes} does not fit the {storage.numel()} elements stored in {member}")
            tensor = torch.as_strided(storage, sizes, strides, offset) if storage.numel() else torch.zeros(sizes, dtype=dtype)
            if entry.get("is_param"):
                tensor = nn.Parameter(tensor, requires_grad=bool(meta.get("requires_grad")) and dtype.is_floating_point)
            tensors[fqn] = tensor
        except UserError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise UserError(f"{name} is damaged: its entry for {fqn!r} in {folder} cannot be read ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
    return tensors, sum(storage.numel() * storage.element_size() for storage in storages.values())


def _scalar_type(code):
    from torch._export.serde.schema import ScalarType

    return ScalarType(code)


def _as_int(value) -> int:
    number = value["as_int"] if isinstance(value, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ValueError(f"expected a non-negative integer size, got {value!r}")
    return number


def raw_fits(storage: torch.Tensor, sizes: list[int], strides: list[int], offset: int) -> bool:
    """Whether a view of `sizes`/`strides` from `offset` stays inside `storage` (checked before torch's as_strided)."""
    if len(sizes) != len(strides):
        return False
    if any(size == 0 for size in sizes):
        return offset <= storage.numel()
    last = offset + sum((size - 1) * stride for size, stride in zip(sizes, strides))
    return last < max(storage.numel(), 1) or (storage.numel() == 0 and last == 0)


def _read_sample_inputs(name: str, data: bytes) -> tuple[tuple, dict]:
    """The sample inputs torch.export.save keeps, through PyTorch's restricted loader only."""
    import pickle

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its note on an unusual pickle protocol: the refusal below says what matters
            value = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = REFUSED_BY_LOADER.search(str(error))
        holds = f" ({refused['name']})" if refused and refused["name"] else ""
        raise UserError(
            f"{name}: its sample inputs were refused by PyTorch's restricted loader (weights_only=True): they hold objects other than tensors and plain containers{holds}; "
            "torch.export.load would unpickle them without that restriction, and the lab never runs code from an upload"
        ) from None
    except Exception as error:  # damaged bytes fail in the unpickler as any of a dozen types
        raise UserError(f"{name} is damaged: its sample inputs cannot be read ({type(error).__name__})") from None
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple) and isinstance(value[1], dict)):
        raise UserError(f"{name} is damaged: its sample inputs are not the (args, kwargs) pair torch.export.save writes")
    return value


# ------------------------------------------------------------------------------------ the graph


def check_program_json(name: str, tree: dict) -> list[str]:
    """Refuse (one line) a graph JSON that would make torch run code (module docstring); drop its
    guards_code. Returns the distinct ATen operators it calls."""
    from torch._export.serde.schema import SCHEMA_VERSION

    version = tree.get("schema_version") or {}
    if not isinstance(version, dict) or version.get("major") != SCHEMA_VERSION[0]:
        raise UserError(
            f"{name} was saved with export schema {version.get('major') if isinstance(version, dict) else version}; this torch ({torch.__version__}) reads schema {SCHEMA_VERSION[0]}: save it again with this torch"
        )
    if not isinstance(tree.get("guards_code", []), list):
        raise UserError(f"{name} is damaged: its guards_code is not a list")
    tree["guards_code"] = []
    for symbol in (tree.get("range_constraints") or {}).keys():
        if not SYMBOL_NAME.match(str(symbol)):
            raise UserError(f"{name} names a shape symbol {str(symbol)[:60]!r}, which torch never writes; the lab refuses it")
    graph_module = tree.get("graph_module")
    if not isinstance(graph_module, dict) or not isinstance(graph_module.get("graph"), dict):
        raise UserError(f"{name} {NOT_A_PROGRAM} (its models/model.json has no graph)")
    if graph_module["graph"].get("custom_obj_values"):
        raise UserError(f"{name} holds TorchScript or opaque objects in its graph; the lab runs plain tensor graphs only")
    operators: set[str] = set()
    for node in graph_module["graph"].get("nodes") or []:
        target = node.get("target") if isinstance(node, dict) else None
        operators.add(_check_operator(name, target))
    _walk(name, tree)
    return sorted(operators)


def _walk(name: str, value, key: str = "") -> None:
    """Every string the deserializer evaluates, resolves or imports, checked wherever it sits."""
    if isinstance(value, dict):
        for child_key, child in value.items():
            if child_key == "expr_str":
                _check_expression(name, child)
            elif child_key == "as_operator":
                _check_operator(name, child)
            elif child_key in ("as_graph", "as_custom_obj", "as_custom_objs"):
                raise UserError(f"{name} passes a subgraph or a custom object between operators (control flow or TorchScript objects); the lab runs plain tensor graphs only")
            elif child_key in ("in_spec", "out_spec") and isinstance(child, str):
                _check_treespec(name, child)
            elif child_key == "source_fn_stack" and isinstance(child, str) and not re.fullmatch(r"[A-Za-z0-9_.,;@ ]*", child):
                raise UserError(f"{name} carries node metadata torch never writes (source_fn_stack {child[:60]!r})")
            else:
                _walk(name, child, child_key)
    elif isinstance(value, list):
        for child in value:
            _walk(name, child, key)


def _check_operator(name: str, target) -> str:
    """An ATen operator overload without file-name or message arguments, or one of the shape-symbol
    operators torch writes (resolved by plain attribute look-ups on torch.ops.aten / operator / torch)."""
    if not isinstance(target, str):
        raise UserError(f"{name} has a graph node without an operator name")
    parts = target.split(".")
    if target.startswith("torch.ops.aten.") and len(parts) == 5:
        packet = getattr(torch.ops.aten, parts[3], None) if parts[3].isidentifier() else None
        overload = getattr(packet, parts[4], None) if packet is not None and parts[4].isidentifier() else None
        if not isinstance(overload, torch._ops.OpOverload):
            raise UserError(f"{name} calls {target}, which is not an ATen operator of this torch ({torch.__version__})")
        for argument in overload._schema.arguments:
            if "str" in str(argument.type) and argument.name not in MODE_STRING_ARGUMENTS:
                raise UserError(f"{name} calls {target}, whose argument {argument.name!r} is a string (files, messages): the lab runs only tensor operators from an upload")
        return f"aten.{parts[3]}.{parts[4]}"
    from torch._export.serde.serialize import _SYM_OPS

    resolved = _resolve(target)
    if resolved is not None and (resolved in _SYM_OPS or resolved is operator.getitem):
        return target
    kind = "a higher-order operator (control flow, checkpointing)" if target.startswith("torch.ops.higher_order.") else "not an ATen tensor operator"
    raise UserError(f"{name} calls {target[:80]}, {kind}; the lab runs only ATen operators from an upload")


def _resolve(target: str):
    roots = {"_operator": operator, "torch": torch, "math": __import__("math")}
    parts = target.split(".")
    if parts[0] not in roots or len(parts) != 2 or not parts[1].isidentifier():
        return None
    return getattr(roots[parts[0]], parts[1], None)


def _check_expression(name: str, expression) -> None:
    """A shape expression torch would sympify (eval): plain arithmetic, comparisons and sympy
    constructors over shape symbols and numbers, nothing else (no attribute, subscript, lambda)."""
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_CHARS:
        raise UserError(f"{name} holds a shape expression that is not a short string")
    try:
        parsed = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise UserError(f"{name} holds a shape expression that is not an expression: {expression[:60]!r}") from None
    for node in ast.walk(parsed):
        ok = isinstance(node, ALLOWED_EXPRESSION_NODES)
        if isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in SYMPY_NAMES
        elif isinstance(node, ast.Name):
            ok = node.id in SYMPY_NAMES or bool(SYMBOL_NAME.match(node.id))
        elif isinstance(node, ast.keyword):
            ok = node.arg in ASSUMPTIONS and isinstance(node.value, ast.Constant) and isinstance(node.value.value, bool)
        elif isinstance(node, ast.Constant):
            ok = isinstance(node.value, (int, float, bool)) or (isinstance(node.value, str) and bool(SYMBOL_NAME.match(node.value)))
        if not ok:
            raise UserError(f"{name} holds a shape expression torch never writes ({expression[:80]!r}); torch.export.load would evaluate it as code, so the lab refuses the file")


def _check_treespec(name: str, text: str) -> None:
    """A pytree spec of tuples, lists and dicts with plain keys (torch's loader imports the module
    a defaultdict's factory or an enum names)."""
    try:
        protocol, schema = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        raise UserError(f"{name} is damaged: a pytree spec is not JSON") from None

    def check(node, depth: int = 0) -> None:
        if depth > 64 or not isinstance(node, dict):
            raise UserError(f"{name} is damaged: a pytree spec is malformed")
        if node.get("type") not in PYTREE_TYPES:
            raise UserError(f"{name} passes its inputs or outputs in a {str(node.get('type'))[:60]} (the lab reads programs taking and giving tensors in tuples, lists and dicts)")
        context = node.get("context")
        if context is not None:
            if not isinstance(context, str) or "__enum__" in context:
                raise UserError(f"{name} has a pytree spec whose context torch never writes")
            keys = json.loads(context)
            if keys is not None and not (isinstance(keys, list) and all(isinstance(k, (str, int)) for k in keys)):
                raise UserError(f"{name} has a pytree spec whose keys are not plain names")
        for child in node.get("children_spec") or []:
            check(child, depth + 1)

    if not isinstance(protocol, int):
        raise UserError(f"{name} is damaged: a pytree spec has no protocol number")
    check(schema)


def _deserialize(name: str, tree: dict, state_dict: dict, constants: dict, example_inputs: tuple) -> torch.export.ExportedProgram:
    """torch's own deserializer, given only checked pieces: dicts and a tuple pass through its
    deserialize_torch_artifact untouched, so nothing here reaches torch.load or pickle."""
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass

    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, tree)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ExportedProgramDeserializer().deserialize(serialized, state_dict, constants, example_inputs)
    except UserError:
        raise
    except Exception as error:  # the deserializer raises a dozen types for a graph it cannot rebuild
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        raise UserError(f"{name} {NOT_A_PROGRAM} that this torch ({torch.__version__}) can rebuild ({type(error).__name__}: {lines[0][:200] if lines else 'no message'})") from None
