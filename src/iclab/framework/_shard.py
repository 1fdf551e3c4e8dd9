"""``python -m iclab.framework._shard RUN TAG [TAG ...]``: train the jobs ``TAG`` of the run
folder ``RUN`` (``iclab.framework.train_shard``); the ``process`` executor's worker."""

import sys


def main(argv: list[str]) -> int:
    from iclab.framework._executors import train_shard

    run_path, *tags = argv
    train_shard(run_path, ["" if tag == "-" else tag for tag in tags])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
