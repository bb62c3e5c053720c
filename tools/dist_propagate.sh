#!/usr/bin/env bash
# sfc-propagate --batch over torchrun processes (one GPU each, or CPU processes):
#   bash tools/dist_propagate.sh NPROC --batch JOBS.json [--resume] [--summary S.json] [sfc-propagate options]
# Each process runs every NPROC-th job; after a killed launch, the same command with --resume finishes the rest.
NPROC=$1
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
torchrun --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$(dirname "$0")/propagate.py" "${@:2}"
