"""``python -m loadgen.debug locustfile.py [UserClass]``: run the script as ``__main__`` with ``import locust``
answered by loadgen, so its own ``run_single_user(...)`` call runs one user here (or, without one, the class
named, or the only class, runs alone). Put breakpoints in the tasks and step through them."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import runpy  # noqa: E402
import sys  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    import inspect

    from loadgen.engine import single_user  # registers itself as run_single_user's runner
    from loadgen.script.locust_modules import locust_names
    from loadgen.script.users import User

    sys.argv = list(argv)
    with locust_names():
        namespace = runpy.run_path(argv[0], run_name="__main__")
    if single_user.RUNS:
        return 0  # the script ran its user itself
    classes = {name: value for name, value in namespace.items()
               if inspect.isclass(value) and issubclass(value, User) and not value.abstract}
    wanted = argv[1] if len(argv) > 1 else None
    if wanted is None and len(classes) != 1:
        print(f"loadgen.debug: name the user class to run: {', '.join(sorted(classes)) or 'none found'}",
              file=sys.stderr)
        return 2
    chosen = classes.get(wanted or next(iter(classes)))
    if chosen is None:
        print(f"loadgen.debug: no user class {wanted!r} in {argv[0]} ({', '.join(sorted(classes))})", file=sys.stderr)
        return 2
    single_user.run_single_user(chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
