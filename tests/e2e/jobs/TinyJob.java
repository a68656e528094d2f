package example;

import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/** A tiny DataStream job for the tests: a slowed-down number sequence into a discarding sink. */
public final class TinyJob {
    public static void main(String[] args) throws Exception {
        long pauseMs = args.length > 0 ? Long.parseLong(args[0]) : 20L;
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSequence(0, Long.MAX_VALUE)
                .map(x -> {
                    Thread.sleep(pauseMs);
                    return x;
                })
                .returns(Long.class)
                .filter(x -> x < 0)
                .print();
        env.execute("tiny-job");
    }
}
