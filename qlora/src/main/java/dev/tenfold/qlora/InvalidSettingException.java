package dev.tenfold.qlora;

/**
 * A training setting outside its allowed range, named as {@link TrainingSettings} names it
 * ({@code lr}, {@code beta2}, {@code warmupSteps}, ...), so that a caller can say it in its own
 * terms (a command line maps {@link #setting} to its flag).
 */
public final class InvalidSettingException extends IllegalArgumentException {
    private final String setting;

    public InvalidSettingException(String setting, String message) {
        super(message);
        this.setting = setting;
    }

    /** The name of the setting, as the {@link TrainingSettings} component is called. */
    public String setting() { return setting; }
}
