package dev.tenfold.tools;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The values a numeric option accepts. {@link Main} checks every option that carries it after
 * parsing and before the command runs (every element of a list option), and refuses a value
 * outside with one line that names the flag and the range. NaN and the infinities are never
 * accepted. Give counts an upper bound too (e.g. {@link Flags#MAX_TOKENS}), so that no value
 * overflows the arithmetic that follows.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.FIELD)
public @interface Range {
    double min() default Double.NEGATIVE_INFINITY;

    double max() default Double.POSITIVE_INFINITY;

    /** Whether {@link #min} itself is refused (e.g. a learning rate must be above 0). */
    boolean minExclusive() default false;

    /** Whether {@link #max} itself is refused (e.g. Adam's beta2 must be below 1). */
    boolean maxExclusive() default false;
}
