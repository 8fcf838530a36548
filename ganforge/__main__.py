"""`python -m ganforge`: the command line; Ctrl-C while it is still importing prints one line, as later on."""

import sys


def main() -> None:
    """Run the CLI (ganforge.cli.main), reporting an interrupt during its imports as `interrupted`, exit 130."""
    try:
        from ganforge.cli import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
