package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GpuVariantsTest {
    @TempDir Path dir;

    private Path report(String folder, double attnMs, boolean withCopy) throws Exception {
        Path d = Files.createDirectories(dir.resolve(folder));
        String copy = withCopy ? "{\"id\": \"copy_d2d\", \"shape\": \"1 GiB\", \"ms\": 0.5}," : "";
        Files.writeString(d.resolve(GpuReport.REPORT_JSON), "{\"rows\": [" + copy
                + "{\"id\": \"attn_bwd_s16384\", \"shape\": \"B=4 S=16384\", \"ms\": " + attnMs + "},"
                + "{\"id\": \"attn_fwd_s16384\", \"shape\": \"B=4 S=16384\", \"error\": \"CUDA_ERROR_LAUNCH_FAILED\"}]}");
        return d;
    }

    private record Out(int code, String out, String err) {}

    private static Out run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int code = GpuVariants.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Out(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void eachVariantsRoundsAndItsSpeedAgainstTheFirst() throws Exception {
        Path a1 = report("current-1", 276.7, true), b1 = report("v2-1", 227.0, false);
        Path a2 = report("current-2", 276.9, true), b2 = report("v2-2", 226.6, false), c1 = report("nodq-1", 144.8, true);
        Path out = dir.resolve("out");
        Out r = run("--out", out.toString(), a1.toString(), b1.toString(), c1.toString(), a2.toString(), b2.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("| id | shape | current ms | v2 ms | nodq ms | current / v2 | current / nodq |"), r.out());
        // medians 276.8 against 226.8 and 144.8
        assertTrue(r.out().contains("| attn_bwd_s16384 | B=4 S=16384 | 276.7 / 276.9 | 227.0 / 226.6 | 144.8 | 1.22x | 1.91x |"), r.out());
        // a row one variant lacks, and a failed row left out
        assertTrue(r.out().contains("| copy_d2d | 1 GiB | 0.5000 / 0.5000 | — | 0.5000 | — | 1.00x |"), r.out());
        assertFalse(r.out().contains("attn_fwd_s16384"), r.out());
        assertEquals(r.out(), Files.readString(out.resolve(GpuVariants.MD)));
        // the baseline named: first, whatever the folders' order; one without reports is refused
        Out named = run("--baseline", "v2", a1.toString(), b1.toString());
        assertEquals(0, named.code(), named.err());
        assertTrue(named.out().startsWith("| id | shape | v2 ms | current ms | v2 / current |"), named.out());
        Out absent = run("--baseline", "current", b1.toString(), c1.toString());
        assertEquals(1, absent.code());
        assertTrue(absent.err().contains("no report of the baseline 'current'"), absent.err());
    }

    @Test
    void aFolderWithoutAReportOrABadNameIsNamed() throws Exception {
        Path a1 = report("current-1", 1, false);
        Path empty = Files.createDirectories(dir.resolve("v2-1"));
        Out missing = run(a1.toString(), empty.toString());
        assertEquals(1, missing.code());
        assertTrue(missing.err().contains("v2-1"), missing.err());
        Out badName = run(a1.toString(), Files.createDirectories(dir.resolve("v2")).toString());
        assertEquals(2, badName.code());
        assertTrue(badName.err().contains("VARIANT-ROUND"), badName.err());
        assertEquals(2, run().code());
        assertEquals(2, run("--sections", "x", a1.toString()).code());
    }
}
