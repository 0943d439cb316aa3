package dev.tenfold.engine.io;

/**
 * A safetensors file (or a sharded model's index) that cannot be read: malformed, inconsistent,
 * hostile, or unreadable from disk (the {@link java.io.IOException} is the cause). The message
 * always names the file and, where one is involved, the tensor.
 *
 * <p>Unchecked so that loaders can let it travel up to the CLI, which prints the message.
 */
public class SafeTensorsException extends RuntimeException {
    public SafeTensorsException(String message) {
        super(message);
    }

    public SafeTensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
