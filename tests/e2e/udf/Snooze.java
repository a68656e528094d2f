package io.streampilot.testudf;

import org.apache.flink.table.functions.ScalarFunction;

/** A slow SQL function: sleeps the given milliseconds per row, so the operators before it are backpressured. */
public class Snooze extends ScalarFunction {
    public Long eval(Long value, Integer millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return value;
    }
}
