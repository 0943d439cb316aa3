#!/usr/bin/env bash
# The cost of data parallelism on this machine's CPU: DataParallelBench alone (all cores) and as 2 MPI
# ranks (the cores shared between them), alternating, ROUNDS times each. JSON per run in OUT.
#   benchmarks/data-parallel.sh [STEPS] [ROUNDS]     (after ./tenfold build)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-4}" ROUNDS="${2:-2}" OUT="${OUT:-target/data-parallel}"
JAVA="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java"
CP="benchmarks/target/tenfold-benchmarks-0.1.0-SNAPSHOT.jar:benchmarks/target/lib/*"
FLAGS=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xmx6g)
CORES="$(nproc)"
ROOT_FLAG=(); [[ "$(id -u)" == 0 ]] && ROOT_FLAG=(--allow-run-as-root)
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
    "$JAVA" "${FLAGS[@]}" -cp "$CP" dev.tenfold.benchmarks.DataParallelBench "$STEPS" 2>/dev/null > "$OUT/one-rank-$round.json"
    # each rank gets half the cores: its fork-join pool plus the calling thread
    mpirun -n 2 --oversubscribe --bind-to none "${ROOT_FLAG[@]}" "$JAVA" "${FLAGS[@]}" \
        -Djava.util.concurrent.ForkJoinPool.common.parallelism=$((CORES / 2 - 1)) \
        -cp "$CP" dev.tenfold.benchmarks.DataParallelBench "$STEPS" 2>/dev/null > "$OUT/two-ranks-$round.json"
    echo "round $round: one rank $(grep -o '"mean_tokens_per_s" : [0-9.]*' "$OUT/one-rank-$round.json"), two ranks $(grep -o '"mean_tokens_per_s" : [0-9.]*' "$OUT/two-ranks-$round.json")"
done
