package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** step-peer's command line: defaults, --isa's settings for each side, and bad flags named in the error. */
class StepPeerOptionsTest {

    private static StepPeer.Options parse(String... args) {
        return StepPeer.Options.parse(args, "/peer/python");
    }

    @Test
    void defaultsRunEveryShapeAtTheIssuesLengthsOnTheMachinesOwnVectors() {
        StepPeer.Options o = parse();
        assertEquals(List.of("h256", "h512", "hd128"), o.shapes());
        assertArrayEquals(new int[] {1024, 4096, 16384}, o.tokens());
        assertEquals(StepPeer.Isa.NATIVE, o.isa());
        assertEquals(List.of(), o.isa().jvmFlags);
        assertEquals(Map.of(), o.isa().peerEnv);
        assertEquals("/peer/python", o.python());
        assertFalse(o.ops());
        assertNull(parse("--help"));
    }

    @Test
    void avx2LimitsBothSides() {
        StepPeer.Options o = parse("--isa", "avx2", "--shapes", "h512", "--tokens", "1024,4096", "--steps", "2");
        assertEquals(StepPeer.Isa.AVX2, o.isa());
        assertEquals(List.of("-XX:UseAVX=2"), o.isa().jvmFlags);
        assertEquals("avx2", o.isa().peerEnv.get("ATEN_CPU_CAPABILITY"));
        assertEquals("AVX2", o.isa().peerEnv.get("MKL_ENABLE_INSTRUCTIONS"));
        assertEquals("AVX2", o.isa().peerEnv.get("ONEDNN_MAX_CPU_ISA"));
        assertEquals(256, o.isa().vectorBits);
        assertEquals("AVX2", o.isa().peerCapability);
        assertEquals(List.of("h512"), o.shapes());
        assertArrayEquals(new int[] {1024, 4096}, o.tokens());
        assertEquals(2, o.steps());
    }

    @Test
    void opsTakesNoValue() {
        StepPeer.Options o = parse("--ops", "--shapes", "h256", "--tokens", "1024");
        assertTrue(o.ops());
        assertEquals(List.of("h256"), o.shapes());
        assertTrue(parse("--shapes", "h256", "--ops").ops());
    }

    @Test
    void badFlagsAreNamed() {
        assertBad("--isa must be native or avx2, got 'sse'", "--isa", "sse");
        assertBad("--isa needs a value", "--isa");
        assertBad("unknown flag --threads", "--threads", "4");
        assertBad("--steps must be a whole number, got 'two'", "--steps", "two");
        assertBad("--steps must be in [1, 100], got 0", "--steps", "0");
        assertBad("--rounds must be in [1, 20], got 21", "--rounds", "21");
        assertBad("--tokens must each be in [2, 1048576], got 1", "--tokens", "1024,1");
        assertBad("--shapes: unknown shape h1024", "--shapes", "h512,h1024");
    }

    private static void assertBad(String message, String... args) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> parse(args));
        assertTrue(e.getMessage().startsWith(message), e.getMessage());
    }
}
