package example;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * A job whose troubles the tests switch on with files in a marker folder (args[0]):
 * {@code slow-<jobid>} makes that job's snapshots take 3 s (longer than the test's checkpoint
 * timeout, so checkpoints fail while the job keeps running); {@code crash} makes every job fail.
 */
public final class PolicyJob {

    static final class Troublemaker extends RichMapFunction<Long, Long> implements CheckpointedFunction {
        private final String markers;

        Troublemaker(String markers) {
            this.markers = markers;
        }

        @Override
        public Long map(Long value) throws Exception {
            Thread.sleep(20);
            if (Files.exists(Paths.get(markers, "crash"))) {
                throw new IllegalStateException("crash injected by the test");
            }
            return value;
        }

        @Override
        public void snapshotState(FunctionSnapshotContext context) throws Exception {
            Path slow = Paths.get(markers, "slow-" + getRuntimeContext().getJobInfo().getJobId());
            if (Files.exists(slow)) {
                Thread.sleep(3000);
            }
        }

        @Override
        public void initializeState(FunctionInitializationContext context) {}
    }

    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSequence(0, Long.MAX_VALUE)
                .map(new Troublemaker(args[0]))
                .returns(Long.class)
                .filter(x -> x < 0)
                .print();
        env.execute("policy-job");
    }
}
