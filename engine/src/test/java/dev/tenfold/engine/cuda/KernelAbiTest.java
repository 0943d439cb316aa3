package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Holds {@link KernelAbi} to native-kernels/src/main/cuda/tenfold_kernels.h, read from the source tree:
 * every kernel the Java side launches exists there with the same parameters, and the launch constants
 * agree. A signature changed in the header without the Java side fails here, on any machine.
 */
class KernelAbiTest {
    static final Path HEADER = Path.of("../native-kernels/src/main/cuda/tenfold_kernels.h");

    static String header() throws IOException {
        return Files.readString(sourceFile(HEADER));
    }

    /**
     * A file of the source tree, relative to the module folder (Maven's working directory). Where the tests
     * run outside a source tree (the .gpu bundle) the calling test is skipped; inside one, a missing file fails.
     */
    static Path sourceFile(Path relative) {
        if (Files.exists(relative)) return relative;
        Assumptions.assumeTrue(Files.exists(Path.of("pom.xml")), "not run from the source tree (a bundle?): " + relative + " is not here");
        return fail(relative.toAbsolutePath() + " is missing from the source tree");
    }

    /** The header without comments. */
    static String code(String text) {
        return text.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\n]*", "");
    }

    /** name -> parameter kinds of every TF_KERNEL prototype. */
    static Map<String, List<KernelAbi.Arg>> prototypes(String code) {
        Map<String, List<KernelAbi.Arg>> out = new LinkedHashMap<>();
        Matcher m = Pattern.compile("TF_KERNEL\\s+void\\s+(\\w+)\\s*\\(([^)]*)\\)\\s*;").matcher(code);
        while (m.find()) {
            List<KernelAbi.Arg> kinds = new ArrayList<>();
            for (String param : m.group(2).split(",")) kinds.add(kind(m.group(1), param.trim()));
            assertNull(out.put(m.group(1), kinds), "kernel declared twice: " + m.group(1));
        }
        return out;
    }

    static KernelAbi.Arg kind(String kernel, String param) {
        if (param.contains("*")) return KernelAbi.Arg.PTR;
        String type = param.replaceAll("\\s+\\w+$", "").replaceAll("\\bconst\\b", "").trim().replaceAll("\\s+", " ");
        return switch (type) {
            case "int" -> KernelAbi.Arg.I32;
            case "long long" -> KernelAbi.Arg.I64;
            case "float" -> KernelAbi.Arg.F32;
            default -> throw new AssertionError(kernel + ": parameter '" + param + "' has a type the Java launcher cannot pass");
        };
    }

    /** Numeric #defines. */
    static Map<String, Long> defines(String code) {
        Map<String, Long> out = new LinkedHashMap<>();
        Matcher m = Pattern.compile("#define\\s+(TF_\\w+)\\s+(\\d+)\\s*$", Pattern.MULTILINE).matcher(code);
        while (m.find()) out.put(m.group(1), Long.parseLong(m.group(2)));
        return out;
    }

    @Test
    void everyKernelTheJavaSideLaunchesIsInTheHeaderWithTheSameParameters() throws IOException {
        Map<String, List<KernelAbi.Arg>> header = prototypes(code(header()));
        assertTrue(header.size() >= 35, "parsed only " + header.keySet());
        for (KernelAbi.Kernel k : KernelAbi.all()) {
            assertTrue(header.containsKey(k.name()), k.name() + " is launched by the Java side but not declared in " + HEADER);
            assertEquals(header.get(k.name()), k.params(), k.name() + ": parameters differ from the header");
        }
        TreeSet<String> unused = new TreeSet<>(header.keySet());
        for (KernelAbi.Kernel k : KernelAbi.all()) unused.remove(k.name());
        if (!unused.isEmpty()) System.out.println("kernels in the header that the Java side does not launch yet: " + unused);
    }

    @Test
    void theParserReadsTypesAsTheLauncherPassesThem() {
        Map<String, List<KernelAbi.Arg>> p = prototypes(code("TF_KERNEL void tf_x(const float* a, bf16 *b, int n, long long m,\n"
                + "   float s, const uint8_t* c); // TF_KERNEL void tf_commented(int);\n/* TF_KERNEL void tf_gone(float); */"));
        assertEquals(Map.of("tf_x", List.of(KernelAbi.Arg.PTR, KernelAbi.Arg.PTR, KernelAbi.Arg.I32, KernelAbi.Arg.I64,
                KernelAbi.Arg.F32, KernelAbi.Arg.PTR)), p);
        assertThrows(AssertionError.class, () -> prototypes("TF_KERNEL void tf_y(double d);"));
    }

    @Test
    void launchConstantsAgreeWithTheHeader() throws IOException {
        Map<String, Long> d = defines(code(header()));
        Map<String, Integer> java = Map.of("TF_EW_THREADS", KernelAbi.EW_THREADS, "TF_EW_MAX_BLOCKS", KernelAbi.EW_MAX_BLOCKS,
                "TF_ROW_THREADS", KernelAbi.ROW_THREADS, "TF_REDUCE_BLOCKS", KernelAbi.REDUCE_BLOCKS,
                "TF_FLASH_FWD_BLOCK_M", KernelAbi.FLASH_FWD_BLOCK_M, "TF_FLASH_FWD_THREADS", KernelAbi.FLASH_FWD_THREADS,
                "TF_FLASH_BWD_BLOCK_N", KernelAbi.FLASH_BWD_BLOCK_N, "TF_FLASH_BWD_THREADS", KernelAbi.FLASH_BWD_THREADS,
                "TF_FLASH_BWD_ERR_WAIT_TIMEOUT", KernelAbi.FLASH_BWD_ERR_WAIT_TIMEOUT);
        for (var e : java.entrySet()) {
            assertEquals(d.get(e.getKey()), Long.valueOf(e.getValue()), e.getKey() + " differs between the header and KernelAbi");
        }
        Matcher wait = Pattern.compile("#define\\s+TF_FLASH_BWD_WAIT_NS\\s+(\\d+)ull").matcher(code(header()));
        assertTrue(wait.find(), "TF_FLASH_BWD_WAIT_NS is not defined in the header");
        assertEquals(KernelAbi.FLASH_BWD_WAIT_SECONDS * 1_000_000_000L, Long.parseLong(wait.group(1)), "TF_FLASH_BWD_WAIT_NS");
    }

    @Test
    void flashSharedMemoryAgreesWithTheHeaderMacros() throws IOException {
        String code = code(header());
        Map<String, Long> d = defines(code);
        for (int dim : new int[] {64, 128}) {
            assertEquals(CExpression.evaluate(macro(code, "TF_FLASH_FWD_SMEM"), dim, d), KernelAbi.flashForwardSmem(dim),
                    "TF_FLASH_FWD_SMEM(" + dim + ")");
            assertEquals(CExpression.evaluate(macro(code, "TF_FLASH_BWD_SMEM"), dim, d), KernelAbi.flashBackwardSmem(dim),
                    "TF_FLASH_BWD_SMEM(" + dim + ")");
        }
    }

    static String macro(String code, String name) {
        code = code.replaceAll("\\\\[ \\t]*\\R", " "); // join continued lines
        Matcher m = Pattern.compile("#define\\s+" + name + "\\(D\\)\\s+(.*)$", Pattern.MULTILINE).matcher(code);
        assertTrue(m.find(), name + "(D) is not defined in the header");
        return m.group(1).trim();
    }

    @Test
    void theMacroEvaluatorHandlesWhatAuthorsWrite() {
        Map<String, Long> d = Map.of("TF_FLASH_FWD_BLOCK_M", 128L);
        assertEquals(0, CExpression.evaluate("0", 64, d));
        assertEquals(3 * 128 * 64 * 2, CExpression.evaluate("(3 * TF_FLASH_FWD_BLOCK_M * (D) * sizeof(bf16))", 64, d));
        assertEquals((2 * 128 + 128) * 128 * 2 + 1024, CExpression.evaluate("((2u*(D) + 128) * (D) * 2 + (1 << 10))", 128, d));
        assertEquals(64 / 8 - 3 % 2, CExpression.evaluate("D / 8 - 3 % 2", 64, d));
        assertThrows(IllegalArgumentException.class, () -> CExpression.evaluate("D ? 1 : 2", 64, d));
    }

    @Test
    void elementwiseLaunchesFollowTheGridStrideRule() {
        assertEquals(new KernelAbi.Launch(1, 1, 1, 256, 0), KernelAbi.elementwise(1));
        assertEquals(1, KernelAbi.elementwise(256).gridX());
        assertEquals(2, KernelAbi.elementwise(257).gridX());
        assertEquals(8192, KernelAbi.elementwise(8192L * 256).gridX());
        assertEquals(8192, KernelAbi.elementwise(1L << 40).gridX()); // capped: the kernels stride
        assertThrows(IllegalArgumentException.class, () -> KernelAbi.elementwise(0));
    }

    @Test
    void rowReductionAndFlashLaunches() {
        assertEquals(new KernelAbi.Launch(37, 1, 1, 256, 0), KernelAbi.rows(37));
        assertEquals(2, KernelAbi.columns(257).gridX());
        assertEquals(1, KernelAbi.columns(1).gridX());
        assertEquals(new KernelAbi.Launch(1024, 1, 1, 256, 0), KernelAbi.reducePartial());
        assertEquals(new KernelAbi.Launch(1, 1, 1, 256, 0), KernelAbi.singleBlock());
        KernelAbi.Launch f = KernelAbi.flashForward(129, 32, 2, 128);
        assertEquals(2, f.gridX());
        assertEquals(32, f.gridY());
        assertEquals(2, f.gridZ());
        assertEquals(256, f.block());
        KernelAbi.Launch b = KernelAbi.flashBackward(81920, 8, 1, 64);
        assertEquals(1280, b.gridX());
        assertEquals(8, b.gridY());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelAbi.flashForward(10, 70_000, 1, 64));
        assertTrue(e.getMessage().contains("65535"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KernelAbi.rows(0));
    }
}
