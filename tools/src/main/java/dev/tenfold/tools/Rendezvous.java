package dev.tenfold.tools;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeSet;
import java.util.UUID;
import java.util.function.Supplier;

/**
 * How the ranks of a GPU run meet before NCCL starts: every rank tells rank 0 its configuration's
 * hash; rank 0 refuses a rank whose hash differs from its own at once, waits for the others at most
 * the rendezvous timeout (naming the ranks that never came), then hands every rank the same bytes
 * (the NCCL unique id). Over TCP (rank 0 listens on MASTER_ADDR:MASTER_PORT) or through files in a
 * folder every machine sees ({@code --rdzv file:DIR}). Under mpirun MPI forms the world itself.
 */
final class Rendezvous {
    private Rendezvous() {}

    /** The rendezvous failed: a configuration differs, a rank never came, rank 0 never answered. */
    static final class Failed extends RuntimeException {
        Failed(String message) { super(message); }
    }

    private static final String HELLO = "tenfold-rdzv";

    // ------------------------------------------------------------------ TCP

    /**
     * Meets the other ranks through rank 0's port. Rank 0 gets its bytes from {@code payload} once
     * every rank has arrived with its hash; every rank returns those bytes.
     */
    static byte[] tcp(String host, int port, int rank, int size, String hash, Supplier<byte[]> payload, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        return rank == 0 ? serve(port, size, hash, payload, timeout, deadline) : ask(host, port, rank, size, hash, timeout, deadline);
    }

    private static byte[] serve(int port, int size, String hash, Supplier<byte[]> payload, Duration timeout, long deadline) throws IOException {
        List<Socket> peers = new ArrayList<>();
        TreeSet<Integer> missing = new TreeSet<>();
        for (int r = 1; r < size; r++) missing.add(r);
        try (ServerSocket server = new ServerSocket()) {
            server.setReuseAddress(true);
            try {
                server.bind(new InetSocketAddress(port));
            } catch (java.net.BindException e) {
                throw new Failed("rank 0 cannot listen on port " + port + " (" + e.getMessage() + "): another process holds it"
                        + " (torchrun's own store?); choose a free one with --master-port");
            }
            while (!missing.isEmpty()) {
                long left = (deadline - System.nanoTime()) / 1_000_000;
                if (left <= 0) break;
                server.setSoTimeout((int) Math.min(Integer.MAX_VALUE, left));
                Socket s;
                try {
                    s = server.accept();
                } catch (SocketTimeoutException e) {
                    break;
                }
                peers.add(s);
                s.setSoTimeout((int) Math.max(1000, Math.min(30_000, left)));
                String line = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8)).readLine();
                String[] f = line == null ? new String[0] : line.split(" ");
                if (f.length != 4 || !f[0].equals(HELLO)) {
                    reply(s, "error not a tenfold rank");
                    continue;
                }
                int r = Integer.parseInt(f[1]);
                String error = null;
                if (Integer.parseInt(f[2]) != size) {
                    error = "rank " + r + " was started for " + f[2] + " ranks, rank 0 for " + size;
                } else if (r < 1 || r >= size) {
                    error = "rank " + r + " is not in [1, " + size + ")";
                } else if (!missing.remove(r)) {
                    error = "rank " + r + " arrived twice (two processes with one RANK)";
                } else if (!f[3].equals(hash)) {
                    error = "rank " + r + "'s configuration differs from rank 0's (hash " + f[3].substring(0, 12) + " vs "
                            + hash.substring(0, 12) + "): every rank must run the same train command on the same model and data";
                }
                if (error != null) {
                    for (Socket p : peers) reply(p, "error " + error);
                    throw new Failed(error);
                }
            }
            if (!missing.isEmpty()) {
                String error = "rank" + (missing.size() > 1 ? "s " : " ") + join(missing) + " of " + size + " did not arrive within --rdzv-timeout "
                        + timeout.toSeconds() + " s (rank 0 waited on port " + port + ")";
                for (Socket p : peers) reply(p, "error " + error);
                throw new Failed(error);
            }
            byte[] bytes = payload.get();
            for (Socket p : peers) reply(p, "ok " + HexFormat.of().formatHex(bytes));
            return bytes;
        } finally {
            for (Socket p : peers) p.close();
        }
    }

    private static byte[] ask(String host, int port, int rank, int size, String hash, Duration timeout, long deadline) throws IOException {
        while (true) {
            long left = (deadline - System.nanoTime()) / 1_000_000;
            if (left <= 0) {
                throw new Failed("rank " + rank + ": rank 0 at " + host + ":" + port + " did not answer within --rdzv-timeout " + timeout.toSeconds() + " s");
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(host, port), (int) Math.min(left, 5000));
                s.setSoTimeout((int) Math.min(Integer.MAX_VALUE, Math.max(1, left) + 5000)); // rank 0 names the late ranks at its deadline
                s.getOutputStream().write((HELLO + " " + rank + " " + size + " " + hash + "\n").getBytes(StandardCharsets.UTF_8));
                s.getOutputStream().flush();
                String line = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8)).readLine();
                if (line == null) throw new Failed("rank " + rank + ": rank 0 at " + host + ":" + port + " closed the rendezvous");
                if (line.startsWith("error ")) throw new Failed("rank " + rank + ": rank 0 refused the run: " + line.substring(6));
                if (!line.startsWith("ok ")) throw new Failed("rank " + rank + ": unexpected answer from " + host + ":" + port);
                return HexFormat.of().parseHex(line.substring(3).trim());
            } catch (java.net.ConnectException | java.net.NoRouteToHostException | java.net.UnknownHostException e) {
                sleep(200); // rank 0 is not listening yet
            } catch (SocketTimeoutException e) {
                throw new Failed("rank " + rank + ": rank 0 at " + host + ":" + port + " did not answer within --rdzv-timeout " + timeout.toSeconds() + " s");
            }
        }
    }

    private static void reply(Socket s, String line) {
        try {
            OutputStream o = s.getOutputStream();
            o.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            o.flush();
        } catch (IOException e) {
            // that rank is gone; the others still hear
        }
    }

    // ------------------------------------------------------------------ files

    /**
     * The same through a shared folder: each rank writes {@code rank-R} (a fresh nonce, the size and
     * its hash); rank 0 reads them all and writes {@code result}: the nonces it accepted and the
     * bytes, or the error. A rank takes a result that names its nonce (not a stale one).
     */
    static byte[] file(Path dir, int rank, int size, String hash, Supplier<byte[]> payload, Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Files.createDirectories(dir);
        Path result = dir.resolve("result");
        String nonce = UUID.randomUUID().toString();
        if (rank == 0) Files.deleteIfExists(result);
        else atomicWrite(dir.resolve("rank-" + rank), nonce + " " + size + " " + hash);
        if (rank == 0) {
            List<String> nonces = new ArrayList<>();
            TreeSet<Integer> missing = new TreeSet<>();
            for (int r = 1; r < size; r++) missing.add(r);
            while (!missing.isEmpty() && System.nanoTime() < deadline) {
                for (int r : List.copyOf(missing)) {
                    Path p = dir.resolve("rank-" + r);
                    if (!Files.exists(p)) continue;
                    String[] f = Files.readString(p).trim().split(" ");
                    String error = null;
                    if (f.length != 3) continue;
                    if (Integer.parseInt(f[1]) != size) error = "rank " + r + " was started for " + f[1] + " ranks, rank 0 for " + size;
                    else if (!f[2].equals(hash)) {
                        error = "rank " + r + "'s configuration differs from rank 0's (hash " + f[2].substring(0, 12) + " vs "
                                + hash.substring(0, 12) + "): every rank must run the same train command on the same model and data";
                    }
                    if (error != null) {
                        atomicWrite(result, "error " + error);
                        throw new Failed(error);
                    }
                    missing.remove(r);
                    nonces.add(f[0]);
                }
                if (!missing.isEmpty()) sleep(100);
            }
            if (!missing.isEmpty()) {
                String error = "rank" + (missing.size() > 1 ? "s " : " ") + join(missing) + " of " + size + " did not arrive within --rdzv-timeout "
                        + timeout.toSeconds() + " s (no rank-N file in " + dir + ")";
                atomicWrite(result, "error " + error);
                throw new Failed(error);
            }
            byte[] bytes = payload.get();
            atomicWrite(result, "ok " + HexFormat.of().formatHex(bytes) + " " + String.join(" ", nonces));
            return bytes;
        }
        while (System.nanoTime() < deadline) {
            if (Files.exists(result)) {
                String line = Files.readString(result).trim();
                if (line.startsWith("error ")) throw new Failed("rank " + rank + ": rank 0 refused the run: " + line.substring(6));
                String[] f = line.split(" ");
                if (f.length > 2 && List.of(f).subList(2, f.length).contains(nonce)) {
                    Files.deleteIfExists(dir.resolve("rank-" + rank));
                    return HexFormat.of().parseHex(f[1]);
                }
            }
            sleep(100);
        }
        throw new Failed("rank " + rank + ": rank 0 wrote no result in " + dir + " within --rdzv-timeout " + timeout.toSeconds() + " s");
    }

    private static void atomicWrite(Path p, String text) throws IOException {
        Path tmp = p.resolveSibling(p.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        Files.writeString(tmp, text + "\n");
        Files.move(tmp, p, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private static String join(TreeSet<Integer> ranks) {
        List<String> s = new ArrayList<>();
        for (int r : ranks) s.add(String.valueOf(r));
        return String.join(", ", s);
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Failed("interrupted during the rendezvous");
        }
    }
}
