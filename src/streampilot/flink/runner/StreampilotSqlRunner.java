package io.streampilot;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;

/**
 * Runs a Flink SQL script submitted by streampilot through the JobManager's jar-run endpoint.
 *
 * <p>Arguments are base64 encoded statements, already split and classified by streampilot:
 * {@code set:<key>:<value>} for SET, {@code dml:<sql>} for INSERT (collected into one statement
 * set, so the script becomes exactly one Flink job) and {@code ddl:<sql>} for everything else.
 * The statement index is kept in error messages so streampilot can point at the script line.
 * With {@code --explain <streaming|batch>} first, it prints the script's plan and runs nothing.
 */
public final class StreampilotSqlRunner {

    private StreampilotSqlRunner() {}

    /** Printed before the one message of a failed EXPLAIN on stderr, which also carries log noise. */
    private static final String EXPLAIN_ERROR = "streampilot-explain-error: ";

    public static void main(String[] args) {
        if (args.length > 1 && args[0].equals("--explain")) {
            try {
                run(args, true);
            } catch (RuntimeException e) {
                String message = e.getMessage() != null && e.getMessage().startsWith("streampilot statement ")
                        ? e.getMessage()
                        : rootMessage(e);
                System.err.println(EXPLAIN_ERROR + message);
                System.exit(1);
            }
            return;
        }
        run(args, false);
    }

    private static void run(String[] args, boolean explain) {
        // "--explain <mode>": print the plan of the script instead of running it (no cluster needed).
        int first = explain ? 2 : 0;
        // The job's own configuration (as submitted) says streaming or batch; the table environment follows it.
        RuntimeExecutionMode mode = explain
                ? RuntimeExecutionMode.valueOf(args[1].toUpperCase(java.util.Locale.ROOT))
                : StreamExecutionEnvironment.getExecutionEnvironment().getConfiguration().get(ExecutionOptions.RUNTIME_MODE);
        TableEnvironment tEnv = TableEnvironment.create(
                mode == RuntimeExecutionMode.BATCH
                        ? EnvironmentSettings.inBatchMode()
                        : EnvironmentSettings.inStreamingMode());
        StatementSet inserts = tEnv.createStatementSet();
        int dmlCount = 0;
        for (int i = first; i < args.length; i++) {
            String decoded = new String(Base64.getDecoder().decode(args[i]), StandardCharsets.UTF_8);
            int colon = decoded.indexOf(':');
            String kind = decoded.substring(0, colon);
            String body = decoded.substring(colon + 1);
            try {
                switch (kind) {
                    case "set": {
                        int sep = body.indexOf('\n');
                        tEnv.getConfig().getConfiguration().setString(body.substring(0, sep), body.substring(sep + 1));
                        break;
                    }
                    case "dml":
                        inserts.addInsertSql(body);
                        dmlCount++;
                        break;
                    default:
                        tEnv.executeSql(body);
                }
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("streampilot statement " + (i - first + 1) + " failed: " + rootMessage(e), e);
            }
        }
        if (dmlCount == 0) {
            throw new IllegalArgumentException("streampilot: the script has no INSERT statement, so there is no job to run");
        }
        if (explain) {
            System.out.println(inserts.explain());
            return;
        }
        inserts.execute();
    }

    private static String rootMessage(Throwable e) {
        StringBuilder sb = new StringBuilder();
        Throwable t = e;
        while (t != null) {
            if (t.getMessage() != null) {
                if (sb.length() > 0) sb.append(" | caused by: ");
                sb.append(t.getMessage());
            }
            t = t.getCause() == t ? null : t.getCause();
        }
        return sb.toString();
    }
}
