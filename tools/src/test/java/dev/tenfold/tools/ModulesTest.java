package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The library modules' descriptors: what each exports, and that no exported signature shows Jackson or picocli. */
class ModulesTest {
    /** The module holding {@code c}: its classes folder (or jar) read by a ModuleFinder. */
    private static ModuleDescriptor descriptor(Class<?> c) throws Exception {
        Path where = Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
        return ModuleFinder.of(where).findAll().iterator().next().descriptor();
    }

    private static Map<String, Set<String>> exports(ModuleDescriptor d) {
        Map<String, Set<String>> out = new TreeMap<>();
        for (ModuleDescriptor.Exports e : d.exports()) out.put(e.source(), new TreeSet<>(e.targets()));
        return out;
    }

    @Test
    void libraryModulesExportTheirApiOnly() throws Exception {
        ModuleDescriptor engine = descriptor(dev.tenfold.engine.Tensor.class);
        assertEquals("tenfold.engine", engine.name());
        assertEquals(Map.of("dev.tenfold.engine", Set.of(), "dev.tenfold.engine.cpu", Set.of(), "dev.tenfold.engine.io", Set.of(),
                "dev.tenfold.engine.cuda", Set.of("tenfold.tools", "tenfold.benchmarks"),
                "dev.tenfold.engine.plan", Set.of("tenfold.llama", "tenfold.qlora", "tenfold.tools", "tenfold.benchmarks"),
                "dev.tenfold.engine.collective", Set.of()), exports(engine));
        ModuleDescriptor llama = descriptor(dev.tenfold.llama.LlamaModel.class);
        assertEquals(Set.of("dev.tenfold.llama", "dev.tenfold.llama.tokenizer", "dev.tenfold.llama.longcontext"), exports(llama).keySet());
        assertEquals(Set.of("dev.tenfold.llama.QuantizedLinears"), llama.uses());
        ModuleDescriptor qlora = descriptor(dev.tenfold.qlora.Trainer.class);
        assertEquals(Set.of("dev.tenfold.qlora", "dev.tenfold.qlora.data", "dev.tenfold.qlora.nf4", "dev.tenfold.qlora.plan"), exports(qlora).keySet());
        assertEquals(List.of("dev.tenfold.qlora.nf4.Nf4Checkpoint$Provider"),
                qlora.provides().iterator().next().providers());
        assertTrue(descriptor(Main.class).exports().isEmpty(), "the CLI is an application");
    }

    @Test
    void noExportedSignatureShowsJacksonOrPicocli() throws Exception {
        List<String> leaks = new ArrayList<>();
        int inspected = 0;
        for (Class<?> anchor : new Class<?>[] {dev.tenfold.engine.Tensor.class, dev.tenfold.llama.LlamaModel.class, dev.tenfold.qlora.Trainer.class}) {
            ModuleDescriptor d = descriptor(anchor);
            Path root = Path.of(anchor.getProtectionDomain().getCodeSource().getLocation().toURI());
            for (ModuleDescriptor.Exports e : d.exports()) {
                if (e.isQualified()) continue;
                for (Class<?> c : classesIn(root, e.source())) {
                    if (!Modifier.isPublic(c.getModifiers())) continue;
                    inspected++;
                    List<Executable> members = new ArrayList<>(List.of(c.getConstructors()));
                    members.addAll(List.of(c.getMethods()));
                    for (Executable m : members) {
                        List<Type> types = new ArrayList<>(List.of(m.getGenericParameterTypes()));
                        if (m instanceof Method method) types.add(method.getGenericReturnType());
                        for (Type t : types) if (leaks(t)) leaks.add(c.getName() + "." + m.getName() + ": " + t.getTypeName());
                    }
                    for (Field f : c.getFields()) if (leaks(f.getGenericType())) leaks.add(c.getName() + "." + f.getName());
                }
            }
        }
        assertTrue(inspected > 50, "public types inspected: " + inspected);
        assertEquals(List.of(), leaks);
    }

    private static boolean leaks(Type t) {
        String n = t.getTypeName();
        return n.contains("com.fasterxml.jackson") || n.contains("picocli");
    }

    private static List<Class<?>> classesIn(Path root, String pkg) throws Exception {
        if (Files.isRegularFile(root)) { // a module's jar (mvn install tests against the jars, mvn test the class folders)
            try (FileSystem jar = FileSystems.newFileSystem(root)) {
                return classesIn(jar.getPath("/"), pkg);
            }
        }
        Path dir = root.resolve(pkg.replace('.', '/'));
        List<Class<?>> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) return out;
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.filter(x -> x.toString().endsWith(".class")).toList()) {
                String name = pkg + "." + p.getFileName().toString().replace(".class", "");
                if (name.endsWith("package-info")) continue;
                out.add(Class.forName(name, false, ModulesTest.class.getClassLoader()));
            }
        }
        return out;
    }
}
