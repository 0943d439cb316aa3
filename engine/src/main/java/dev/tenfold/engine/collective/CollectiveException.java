package dev.tenfold.engine.collective;

/** A collective failed: a rank is missing, timed out, or the library reported an error. */
public class CollectiveException extends RuntimeException {
    public CollectiveException(String message) {
        super(message);
    }

    public CollectiveException(String message, Throwable cause) {
        super(message, cause);
    }
}
