"""Load the user's script (after gevent is patched) and find its user classes and load shape."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from loadgen.model.errors import ScriptError, UsageError
from loadgen.script.events import events
from loadgen.script.locust_modules import imports_locust, locust_names
from loadgen.script.options import parse_script_args
from loadgen.script.tags import selected
from loadgen.script.tasksets import TaskSet, is_task_set
from loadgen.script.users import User


@dataclass
class Script:
    """What a script defines."""

    path: str
    module: ModuleType
    user_classes: dict[str, type[User]]
    shape: Any = None
    source: bytes = b""
    extra_files: dict[str, bytes] = field(default_factory=dict)
    script_options: dict[str, Any] = field(default_factory=dict)  # the values of its own options
    locust: bool = False  # it imported Locust's names (``import locust`` answered by loadgen)


def load_script(path: str, class_names: tuple[str, ...] | list[str] = (), module_name: str | None = None,
                tags: tuple[str, ...] = (), exclude_tags: tuple[str, ...] = (), script_args: tuple[str, ...] = (),
                script_values: dict[str, Any] | None = None) -> Script:
    """Import ``path`` and return its user classes (all non-abstract ones, or those named), with only the
    tasks ``tags``/``exclude_tags`` keep (a class left with none is left out). ``script_args``: the words
    for the script's own options (``init_command_line_parser``), and class names; ``script_values``: their
    values as parsed already (a master's, on a worker)."""
    given = path
    files = script_files(path)
    events.reset()
    modules: list[ModuleType] = []
    sources: list[bytes] = []
    with locust_names():
        for index, file in enumerate(files):
            with open(file, "rb") as handle:
                sources.append(handle.read())
            name = module_name if module_name is None or len(files) == 1 else f"{module_name}_{index}"
            modules.append(_import(file, sources[-1], name))
    module = modules[0]
    values, named = parse_script_args(script_args)  # the script's parser hooks run in every process
    class_names = tuple(class_names) + named
    if script_values is not None:  # a master's values win on its workers (as Locust ships parsed options)
        values.update(script_values)
    script_values = values
    classes = _user_classes(modules, files)
    if len(files) > 1:
        path = ", ".join(files)
    if class_names:
        unknown = [n for n in class_names if n not in classes]
        if unknown:
            known = ", ".join(sorted(classes)) or "none"
            raise ScriptError(f"user class {unknown[0]!r} is not in {path} (it defines: {known})")
        classes = {n: classes[n] for n in class_names}
    if not classes:
        raise ScriptError(f"{path} defines no user class: add a class that subclasses loadgen.HttpUser or User")
    for name, cls in classes.items():
        if not cls._task_table:
            raise ScriptError(f"user class {name} in {path} has no tasks: decorate a method with @task")
    if tags or exclude_tags:
        classes = _tagged(classes, tags, exclude_tags, path)
    return Script(path=files[0] if len(files) == 1 else given, module=module, user_classes=classes,
                  shape=_one_shape(modules, files), source=b"\n".join(sources),
                  script_options=dict(script_values), locust=any(imports_locust(text) for text in sources))


def script_files(path: str) -> list[str]:
    """The files ``-f`` names: a .py file, a package (its ``__init__.py``), a directory of locustfiles (every
    ``.py`` file in its tree not starting with ``_``, as Locust reads one), or several of these, comma-separated."""
    if not path:
        raise ScriptError("no script given: pass -f/--file path/to/script.py")
    if "," in path:
        return [file for part in path.split(",") if part.strip() for file in script_files(part.strip())]
    if os.path.isdir(path):
        init = os.path.join(path, "__init__.py")
        if os.path.isfile(init):
            return [init]
        found = sorted(os.path.join(folder, name) for folder, dirs, names in os.walk(path)
                       for name in names if name.endswith(".py") and not name.startswith("_")
                       and not any(part.startswith(".") and part != "." or part == "__pycache__"
                                   for part in os.path.relpath(folder, path).split(os.sep)))
        if not found:
            raise ScriptError(f"script directory {path!r} has no .py files and no __init__.py: point -f at a "
                              ".py file, a package or a directory of locustfiles")
        return found
    if not os.path.exists(path):
        raise ScriptError(f"script {path!r} not found: check the path given to -f/--file")
    if not path.endswith(".py"):
        raise ScriptError(f"script {path!r} is not a .py file: give -f a Python file")
    return [path]


def _user_classes(modules: list[ModuleType], files: list[str]) -> dict[str, type[User]]:
    """The non-abstract user classes of every module; one name, one class."""
    classes: dict[str, type[User]] = {}
    for module, file in zip(modules, files):
        for name, value in vars(module).items():
            if not (inspect.isclass(value) and issubclass(value, User) and not value.abstract):
                continue
            if name in classes and classes[name] is not value:
                raise ScriptError(f"two user classes are named {name} ({file} and another file): rename one")
            classes[name] = value
    return classes


def _one_shape(modules: list[ModuleType], files: list[str]) -> Any:
    shapes = [(shape, file) for module, file in zip(modules, files) if (shape := _find_shape(module)) is not None]
    if len(shapes) > 1:
        raise ScriptError(f"{shapes[0][1]} and {shapes[1][1]} both define a load shape: keep one")
    return shapes[0][0] if shapes else None


def _tagged(classes: dict[str, type[User]], tags: tuple[str, ...], exclude_tags: tuple[str, ...],
            path: str) -> dict[str, type[User]]:
    """Each class with the tasks the tag filters keep, as a subclass of its own; classes left with none go.
    A task set is kept with the tasks it keeps (tags on a task set class are its tasks' tags)."""
    kept: dict[str, type[User]] = {}
    memo: dict[type, type | None] = {}
    for name, cls in classes.items():
        table = _kept_tasks(cls._task_table, tags, exclude_tags, frozenset(), memo)
        if not table:
            continue
        if table != cls._task_table:
            sub: type[User] = type(name, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
            sub._task_table = table
            cls = sub
        kept[name] = cls
    if not kept:
        shown = ", ".join(f"-T {t}" for t in tags) + "".join(f" -E {t}" for t in exclude_tags)
        raise UsageError(f"no task of {path} is left by {shown.strip()}: tag tasks with @tag('name') or "
                         "change the tags")
    return kept


def _kept_tasks(table: list[tuple[str, Any]], tags: tuple[str, ...], exclude_tags: tuple[str, ...],
                inherited: frozenset[str], memo: dict[type, type | None]) -> list[tuple[str, Any]]:
    from loadgen.script.markov import MarkovTaskSet
    from loadgen.script.tags import TAGS_ATTRIBUTE

    kept: list[tuple[str, Any]] = []
    for name, task in table:
        if not is_task_set(task):
            if selected([(name, task)], tags, exclude_tags, inherited):
                kept.append((name, task))
            continue
        if task not in memo:
            if issubclass(task, MarkovTaskSet):
                memo[task] = task  # a Markov chain is kept whole (its tasks cannot be tagged)
            else:
                own = inherited | frozenset(getattr(task, TAGS_ATTRIBUTE, ()))
                inner = _kept_tasks(task._task_table, tags, exclude_tags, own, memo)
                sub: type[TaskSet] | None = None
                if inner:
                    sub = type(task.__name__, (task,), {"__module__": task.__module__,
                                                        "__qualname__": task.__qualname__})
                    sub._task_table = inner
                memo[task] = sub
        found = memo[task]
        if found is not None:
            kept.append((name, found))
    return kept


def _import(path: str, source: bytes, module_name: str | None) -> ModuleType:
    name = module_name or "loadgen_script_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    if b"\x00" in source:
        raise ScriptError(f"{path} is not Python source (it contains NUL bytes): give -f a Python file")
    try:
        code = compile(source, path, "exec")
    except (SyntaxError, ValueError) as exc:
        lineno = getattr(exc, "lineno", None)
        line = f", line {lineno}" if lineno else ""
        message = getattr(exc, "msg", None) or str(exc)
        raise ScriptError(f"syntax error in {getattr(exc, 'filename', None) or path}{line}: {message}") from None
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except ImportError as exc:
        raise ScriptError(f"{path}: cannot import {exc.name or exc}: install it or fix the import ({exc})") from None
    except SystemExit:
        raise ScriptError(f"{path} called exit() while loading: remove it from the module level") from None
    except BaseException as exc:
        frame = _script_frame(exc, path)
        raise ScriptError(f"{path}{frame}: {type(exc).__name__}: {exc}") from None
    return module


def _script_frame(exc: BaseException, path: str) -> str:
    for entry in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.abspath(entry.filename) == os.path.abspath(path):
            return f", line {entry.lineno}"
    return ""


def _find_shape(module: ModuleType) -> Any:
    """A ``shape(elapsed_s)`` function or a ``LoadShape`` subclass instance, if the script has one."""
    from loadgen.script.shapes import LoadShape

    for value in vars(module).values():
        if inspect.isclass(value) and issubclass(value, LoadShape) and value is not LoadShape \
                and value.__module__ == module.__name__:
            return value()
    func = getattr(module, "shape", None)
    if callable(func) and not inspect.isclass(func):
        return func
    return None
