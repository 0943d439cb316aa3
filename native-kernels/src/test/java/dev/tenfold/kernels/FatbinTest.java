package dev.tenfold.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The fatbin the build ships (dev/tenfold/kernels/tenfold.fatbin) holds every kernel the ABI header
 * declares, in each SASS image and in the PTX, and nothing the header does not declare. Needs no
 * GPU: it reads the fatbin container and looks for each kernel's code section (".text.NAME") in the
 * ELF images and its ".entry NAME(" in the PTX. Skips, saying why, where the build had no nvcc.
 */
class FatbinTest {
    private static final String DIR = "/dev/tenfold/kernels/";
    private static final int FATBIN_MAGIC = 0xBA55ED50;
    private static final int KIND_PTX = 1, KIND_ELF = 2;
    private static final long FLAG_COMPRESSED = 0x2000;

    /** One image of the fatbin container: PTX or ELF (cubin) for one architecture. */
    record Image(int kind, int arch, byte[] payload) {
        String describe() { return (kind == KIND_ELF ? "sm_" : "compute_") + arch + (kind == KIND_ELF ? " SASS" : " PTX"); }
    }

    @Test
    void headerParsingFindsTheDeclaredKernels() throws IOException {
        List<Section> sections = sections(resourceText("tenfold_kernels.h"));
        Map<String, Set<String>> byFile = new LinkedHashMap<>();
        for (Section s : sections) s.files().forEach(f -> byFile.put(f, s.kernels()));
        assertTrue(byFile.get("elementwise.cu").contains("tf_add_f32"), sections.toString());
        assertTrue(byFile.get("nf4.cu").contains("tf_nf4_dequant_bf16"), sections.toString());
        assertTrue(byFile.get("flash_attention_bwd.cu").contains("tf_flash_bwd_d128"),
                "'.. _fwd.cu / _bwd.cu' names flash_attention_bwd.cu: " + byFile.keySet());
        int total = sections.stream().mapToInt(s -> s.kernels().size()).sum();
        assertTrue(total >= 39, "only " + total + " kernels parsed from the header: " + sections);
    }

    @Test
    void fatbinHoldsEveryDeclaredKernelForEachArchitecture() throws IOException {
        Properties build = buildProperties();
        Assumptions.assumeTrue("built".equals(build.getProperty("status")),
                () -> "CUDA kernels were not built: " + build.getProperty("reason") + " (the CPU backend is unaffected)");

        byte[] fatbin = resourceBytes("tenfold.fatbin");
        assertNotNull(fatbin, "build.properties says status=built but the jar has no " + DIR + "tenfold.fatbin");
        List<Image> images = images(fatbin);

        // The images are the architectures the build names: SASS for each sm_XX, PTX for compute_XX.
        List<String> expected = new ArrayList<>();
        for (String a : build.getProperty("archs").split(",")) {
            expected.add(a.startsWith("sm_") ? a + " SASS" : a + " PTX");
        }
        assertEquals(new TreeSet<>(expected), new TreeSet<>(images.stream().map(Image::describe).toList()), "fatbin images");

        // Required: the kernels of every header section whose family file the build compiled. A
        // section none of whose files exist yet (another issue's kernels) is reported, not required.
        Set<String> sources = new TreeSet<>(Arrays.asList(build.getProperty("sources", "").split(",")));
        Set<String> required = new TreeSet<>(), declared = new TreeSet<>(), notYetWritten = new TreeSet<>();
        for (Section s : sections(resourceText("tenfold_kernels.h"))) {
            declared.addAll(s.kernels());
            boolean present = s.files().stream().anyMatch(sources::contains);
            (present ? required : notYetWritten).addAll(s.kernels());
        }
        if (!notYetWritten.isEmpty()) {
            System.out.println("FatbinTest: declared in the header, their family files not written yet: " + notYetWritten);
        }

        Set<String> problems = new LinkedHashSet<>();
        for (Image image : images) {
            String text = new String(image.payload(), StandardCharsets.ISO_8859_1);
            for (String k : required) {
                String needle = image.kind() == KIND_ELF ? ".text." + k + "\0" : ".entry " + k + "(";
                if (!text.contains(needle)) problems.add(k + " missing from " + image.describe());
            }
            // The other way round: a kernel in the fatbin that the header does not declare is ABI drift.
            Matcher m = Pattern.compile(image.kind() == KIND_ELF ? "\\.text\\.(tf_\\w+)\0" : "\\.entry (tf_\\w+)\\(").matcher(text);
            while (m.find()) {
                if (!declared.contains(m.group(1))) problems.add(m.group(1) + " in " + image.describe() + " is not declared in tenfold_kernels.h");
            }
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));

        String listed = build.getProperty("kernels", "");
        for (String k : required) assertTrue(Arrays.asList(listed.split(",")).contains(k), k + " not in build.properties kernels=" + listed);
    }

    /** Builds record why the fatbin is or is not there; their absence means the build step never ran. */
    private static Properties buildProperties() throws IOException {
        String text = resourceText("build.properties");
        if (text == null) {
            fail(DIR + "build.properties is missing: native-kernels/build-kernels.sh did not run in this build");
        }
        Properties p = new Properties();
        p.load(new StringReader(text));
        return p;
    }

    /**
     * The fatbin container as nvcc's fatbinary writes it (little-endian): a 16-byte header
     * {u32 magic 0xBA55ED50, u16 version, u16 header size, u64 size of the entries}, then entries
     * {u16 kind (1 PTX, 2 ELF), u16 version, u32 header size, u64 payload size, ..., u32 arch at
     * +28, ..., u64 flags at +40} each followed by its payload.
     */
    static List<Image> images(byte[] fatbin) {
        ByteBuffer b = ByteBuffer.wrap(fatbin).order(ByteOrder.LITTLE_ENDIAN);
        assertTrue(fatbin.length >= 16 && b.getInt(0) == FATBIN_MAGIC, "tenfold.fatbin does not start with the fatbin magic");
        int headerSize = Short.toUnsignedInt(b.getShort(6));
        long end = headerSize + b.getLong(8);
        assertTrue(end <= fatbin.length, "fatbin header claims " + end + " bytes, file has " + fatbin.length);
        List<Image> images = new ArrayList<>();
        long at = headerSize;
        while (at < end) {
            int p = Math.toIntExact(at);
            int kind = Short.toUnsignedInt(b.getShort(p));
            int entryHeader = b.getInt(p + 4);
            long size = b.getLong(p + 8);
            int arch = b.getInt(p + 28);
            long flags = b.getLong(p + 40);
            assertTrue(kind == KIND_PTX || kind == KIND_ELF, "unknown fatbin entry kind " + kind + " at " + p);
            assertTrue((flags & FLAG_COMPRESSED) == 0, "fatbin entry at " + p + " is compressed (build-kernels.sh asks for none)");
            int from = p + entryHeader;
            byte[] payload = Arrays.copyOfRange(fatbin, from, Math.toIntExact(from + size));
            if (kind == KIND_ELF) {
                assertTrue(payload.length > 4 && payload[0] == 0x7f && payload[1] == 'E' && payload[2] == 'L' && payload[3] == 'F',
                        "sm_" + arch + " image is not an ELF file");
            }
            images.add(new Image(kind, arch, payload));
            at = from + size;
        }
        return images;
    }

    /** A section of the header: the family file(s) it names and the kernels it declares. */
    record Section(List<String> files, Set<String> kernels) {}

    /**
     * The header's sections: each starts at a comment line of dashes naming its family file(s), e.g.
     * "// ---- rope.cu" or "// ---- flash_attention_fwd.cu / _bwd.cu" (a name starting with '_'
     * replaces the last '_' part of the previous one: flash_attention_bwd.cu).
     */
    static List<Section> sections(String header) {
        assertNotNull(header, DIR + "tenfold_kernels.h is missing from the jar");
        Pattern start = Pattern.compile("^//\\s*-{8,}\\s*(.*)$");
        Pattern file = Pattern.compile("(\\w+)\\.cu\\b");
        Pattern kernel = Pattern.compile("TF_KERNEL\\s+void\\s+(\\w+)\\s*\\(");
        List<Section> out = new ArrayList<>();
        Section current = new Section(List.of(), new LinkedHashSet<>());
        for (String line : header.split("\n")) {
            Matcher s = start.matcher(line);
            if (s.matches()) {
                List<String> files = new ArrayList<>();
                Matcher f = file.matcher(s.group(1));
                while (f.find()) {
                    String stem = f.group(1);
                    if (stem.startsWith("_") && !files.isEmpty()) {
                        String prev = files.getLast();
                        stem = prev.substring(0, Math.max(0, prev.lastIndexOf('_'))) + stem;
                    }
                    files.add(stem + ".cu");
                }
                current = new Section(files, new LinkedHashSet<>());
                out.add(current);
                continue;
            }
            Matcher k = kernel.matcher(line);
            while (k.find()) current.kernels().add(k.group(1));
        }
        assertTrue(out.stream().noneMatch(x -> x.files().isEmpty() && !x.kernels().isEmpty()),
                "a header section declares kernels but names no .cu file: " + out);
        return out;
    }

    private static byte[] resourceBytes(String name) throws IOException {
        try (InputStream in = FatbinTest.class.getResourceAsStream(DIR + name)) {
            return in == null ? null : in.readAllBytes();
        }
    }

    private static String resourceText(String name) throws IOException {
        byte[] b = resourceBytes(name);
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }
}
