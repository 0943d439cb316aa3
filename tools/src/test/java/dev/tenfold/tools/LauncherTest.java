package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ./tenfold launcher as a user runs it (on this build's classes, through TENFOLD_CLASSPATH):
 * the JVM's "Using incubator modules" notice is gone from stderr while everything else on stderr,
 * stdout, stdin and the exit codes pass through unchanged.
 */
class LauncherTest {
    @TempDir static Path dir;
    static Path model;
    static final Path LAUNCHER = Path.of("").toAbsolutePath().getParent().resolve("tenfold");

    record Run(int code, String out, String err) {}

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 4);
    }

    static Run launch(String stdin, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("bash", LAUNCHER.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile())
                .redirectOutput(dir.resolve("out.txt").toFile()).redirectError(dir.resolve("err.txt").toFile());
        pb.environment().put("TENFOLD_CLASSPATH", System.getProperty("java.class.path"));
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("TENFOLD_JAVA_OPTS");
        Process p = pb.start();
        p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the launcher did not finish");
        // read right after the exit, as a shell script would: nothing may still be on its way
        return new Run(p.exitValue(), Files.readString(dir.resolve("out.txt")), Files.readString(dir.resolve("err.txt")));
    }

    @Test
    void stdinStdoutAndExitCodesPassThroughWithoutTheIncubatorNotice() throws Exception {
        assertTrue(Files.isRegularFile(LAUNCHER), LAUNCHER.toString());
        Run tokens = launch("Hello world!", "tokenize", "--model", model.toString());
        assertEquals(0, tokens.code(), tokens.err());
        assertTrue(tokens.out().matches("\\[\\d+(, \\d+)*\\]\\n"), tokens.out());
        assertEquals("", tokens.err());

        Path data = Files.writeString(dir.resolve("ppl.jsonl"), "{\"input_ids\": [1, 2, 3, 4, 5, 6, 7]}\n");
        Run ppl = launch("", "eval", "ppl", "--model", model.toString(), "--data", data.toString(), "--json");
        assertEquals(0, ppl.code(), ppl.err());
        assertTrue(new ObjectMapper().readTree(ppl.out()).has("perplexity"), ppl.out());
        assertTrue(ppl.err().startsWith("tenfold: evaluated in "), ppl.err());
        assertTrue(ppl.err().endsWith(" s\n"), "the last line whole: " + ppl.err());

        Run usage = launch("", "train", "--model", model.toString(), "--data", data.toString(), "--lr", "NaN");
        assertEquals(2, usage.code());
        assertEquals("tenfold train: --lr must be a finite number > 0, got NaN\n", usage.err());

        Run failed = launch("", "generate", "--model", dir.resolve("nowhere").toString(), "--prompt", "x");
        assertEquals(1, failed.code());
        assertEquals("tenfold generate: --model " + dir.resolve("nowhere") + ": not a folder\n", failed.err());

        Run help = launch("", "bench", "--help");
        assertEquals(0, help.code(), help.err());
        assertTrue(help.out().startsWith("Usage: tenfold bench"), help.out());
        assertFalse((tokens.err() + ppl.err() + usage.err() + failed.err() + help.err()).contains("incubator"));
    }
}
