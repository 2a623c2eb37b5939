#!/bin/bash
# Renders a voice-line script on a Slurm cluster: one array task per shard, then a merge.
#
#   SCRIPT=/shared/lines.tsv OUT=/shared/renders SHARDS=8 bash slurm-array.sh
#
# Run by hand, it submits itself twice: as a job array (task I renders shard I of SHARDS into
# $OUT/shard-I) and as a job that waits for the whole array and merges the shards into
# $OUT/merged. sbatch passes the environment on, so every job sees SCRIPT, OUT and SHARDS.
# $OUT must be on storage every node mounts; `voxcpm` must be on each node's PATH, and
# VOXCPM_MODEL (or --model below) must name a checkpoint every node can read.
#
#SBATCH --job-name=voxcpm-batch
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=voxcpm-%A_%a.log
# On GPU nodes: add "#SBATCH --gres=gpu:1" and "--device gpu" (a build with --features wgpu).
set -euo pipefail

SCRIPT=${SCRIPT:?set SCRIPT to the voice-line script (.tsv or .csv) on shared storage}
OUT=${OUT:?set OUT to the output folder on shared storage}
SHARDS=${SHARDS:-8}

if [[ -n ${SLURM_ARRAY_TASK_ID:-} ]]; then
    # An array task. Shards count from 0; subtracting the array's first index also fits an
    # array submitted as --array=1-N.
    shard=$((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))
    voxcpm batch "$SCRIPT" --shard "$shard/$SLURM_ARRAY_TASK_COUNT" -o "$OUT/shard-$shard"
elif [[ -n ${SLURM_JOB_ID:-} ]]; then
    # The merge job. A shard that failed some lines still finished; one that crashed or never
    # ran makes the merge refuse, naming it (re-submit that task: finished lines are skipped).
    voxcpm batch --merge "$OUT"/shard-* -o "$OUT/merged"
else
    array=$(sbatch --parsable --array="0-$((SHARDS - 1))" "$0")
    # afterany, not afterok: a shard with a failed line exits 3, and the merge still lists
    # every line, the failed ones as failed.
    sbatch --parsable --job-name=voxcpm-merge --dependency="afterany:${array%%;*}" \
        --cpus-per-task=1 --mem=1G --time=00:30:00 --output=voxcpm-merge-%j.log "$0"
fi
