package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.cuda.CudaProbe;
import org.junit.jupiter.api.Test;

class DoctorCommandTest {

    @Test
    void reportsTheMachineAndExitsZero() {
        CliTest.Result r = CliTest.run("", "doctor");
        CudaProbe.Report cuda = CudaProbe.probe();
        if (!cuda.hasGpu()) assertEquals(0, r.code(), r.out() + r.err());
        for (String line : new String[] {"java        ", "cpu         ", "vector api  ", "cuda driver ", "cublas      ", "nccl        ",
                "kernels     ", "backend     "}) {
            assertTrue(r.out().contains("\n" + line) || r.out().startsWith(line), "doctor lacks '" + line.trim() + "':\n" + r.out());
        }
        if (!cuda.hasGpu()) {
            assertTrue(r.out().contains("backend     cpu: no GPU here, so no kernel was run"), r.out());
            assertFalse(r.out().contains("self-check"), r.out());
        } else {
            System.out.println(r.out());
        }
    }

    @Test
    void refusesADeviceItCannotCheckOnEveryMachine() {
        // checked before anything is probed, so a machine without a GPU refuses it too
        for (String[] c : new String[][] {{"cpu", "not cpu"}, {"tpu", "unknown device 'tpu'"}, {"cuda:x", "unknown device 'cuda:x'"}}) {
            CliTest.Result r = CliTest.run("", "doctor", "--device", c[0]);
            assertEquals(2, r.code(), c[0] + ": " + r.out() + r.err());
            assertTrue(r.err().startsWith("tenfold doctor: --device") && r.err().contains(c[1]), r.err());
            assertEquals("", r.out(), "refused before the report");
        }
    }
}
