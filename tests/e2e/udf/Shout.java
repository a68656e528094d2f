package io.streampilot.testudf;

import org.apache.flink.table.functions.ScalarFunction;

/** A user-defined SQL function in its own jar, known to no Flink class path until an app brings it. */
public class Shout extends ScalarFunction {
    public String eval(String s) {
        return s == null ? null : s.toUpperCase() + "!";
    }
}
