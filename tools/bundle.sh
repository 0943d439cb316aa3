#!/usr/bin/env bash
# Writes .gpu/: a self-contained tenfold for GPU machines that have no Java and no Maven
# (../shared/GPU.md): a jlink runtime, the CLI's jars, every module's tests with the JUnit console
# launcher, and run.sh, which prints `tenfold doctor` and runs the whole suite, logging to $OUT.
# The runtime leaves out java.desktop (AWT) to stay well under 64 MB: charts (loss.png, heatmaps)
# are skipped there, with a note; their numbers are in metrics.jsonl and report.json.
# Called by `./tenfold bundle` after a build; JAVA_HOME is the JDK the launcher picked.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="$ROOT/.gpu"
JUNIT_CONSOLE="org.junit.platform:junit-platform-console-standalone:1.14.1"

rm -rf "$OUTDIR.tmp"
mkdir -p "$OUTDIR.tmp/lib" "$OUTDIR.tmp/tests"
"$JAVA_HOME/bin/jlink" --add-modules java.base,jdk.incubator.vector,jdk.unsupported,java.management,jdk.management,java.logging,java.xml \
    --strip-java-debug-attributes --strip-native-debug-symbols=objcopy=/usr/bin/objcopy --no-header-files --no-man-pages --compress=zip-9 \
    --output "$OUTDIR.tmp/jre"
cp "$ROOT"/tools/target/tenfold-tools-*.jar "$ROOT"/tools/target/lib/*.jar "$OUTDIR.tmp/lib/"
rm -f "$OUTDIR.tmp"/lib/*-tests.jar
for m in engine model-llama qlora tools; do
    cp -r "$ROOT/$m/target/test-classes" "$OUTDIR.tmp/tests/$m"
done
(cd "$ROOT" && mvn -B -ntp -q dependency:copy -Dartifact="$JUNIT_CONSOLE" -DoutputDirectory="$OUTDIR.tmp/tests" >/dev/null 2>&1)
mv "$OUTDIR.tmp"/tests/junit-platform-console-standalone-*.jar "$OUTDIR.tmp/tests/junit-console.jar"

cat > "$OUTDIR.tmp/run.sh" <<'RUN'
#!/usr/bin/env bash
# doctor, then the whole test suite; logs in $OUT (or ./logs). Extra arguments go to the JUnit
# console launcher (e.g. --include-tag gpu).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
LOGS="${OUT:-$HERE/logs}"
mkdir -p "$LOGS"
JAVA=("$HERE/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC)
"${JAVA[@]}" -cp "$HERE/lib/*" dev.tenfold.tools.Main doctor 2>&1 | tee "$LOGS/doctor.txt"
TESTS="$HERE/tests/engine:$HERE/tests/model-llama:$HERE/tests/qlora:$HERE/tests/tools"
"${JAVA[@]}" -Xmx16g -Xss8m -cp "$HERE/lib/*:$TESTS:$HERE/tests/junit-console.jar" org.junit.platform.console.ConsoleLauncher \
    execute --scan-class-path="$TESTS" --exclude-tag=slow --details=summary --disable-banner \
    --reports-dir="$LOGS/junit" "$@" 2>&1 | tee "$LOGS/tests.txt"
exit "${PIPESTATUS[0]}"
RUN
chmod +x "$OUTDIR.tmp/run.sh"
rm -rf "$OUTDIR"
mv "$OUTDIR.tmp" "$OUTDIR"
echo "tenfold: bundle written to .gpu ($(du -sh "$OUTDIR" | cut -f1)); on the GPU machine run .gpu/run.sh" >&2
