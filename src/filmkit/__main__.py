"""`python -m filmkit` runs the command line, e.g. under torchrun: `torchrun --nproc-per-node 2 -m filmkit train`."""

from filmkit.cli import main

main()
