/*
 * streampilot's job status listener for Flink 2.x JobManagers.
 *
 * Configured with
 *   execution.job-status-changed-listeners: io.streampilot.StreampilotStatusPush
 *   streampilot.push.url:   http://<streampilot>/api/v1/push/<cluster id>
 *   streampilot.push.token: <the cluster's push token>
 * it posts every job status change (org.apache.flink.core.execution.JobExecutionStatusEvent) and,
 * where the JobManager compiles the program, the job's lineage at creation
 * (org.apache.flink.streaming.runtime.execution.JobCreatedEvent) to streampilot as JSON, on Flink's
 * I/O executor with short timeouts: a slow or absent streampilot never holds up the JobManager, and a
 * lost event is caught up by streampilot's polling.
 */

package io.streampilot;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;

import org.apache.flink.core.execution.JobExecutionStatusEvent;
import org.apache.flink.core.execution.JobStatusChangedEvent;
import org.apache.flink.core.execution.JobStatusChangedListener;
import org.apache.flink.core.execution.JobStatusChangedListenerFactory;
import org.apache.flink.streaming.api.lineage.LineageDataset;
import org.apache.flink.streaming.api.lineage.LineageEdge;
import org.apache.flink.streaming.api.lineage.LineageGraph;
import org.apache.flink.streaming.api.lineage.LineageVertex;
import org.apache.flink.streaming.runtime.execution.JobCreatedEvent;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class StreampilotStatusPush implements JobStatusChangedListenerFactory {
    private static final Logger LOG = LoggerFactory.getLogger(StreampilotStatusPush.class);

    @Override
    public JobStatusChangedListener createListener(Context context) {
        Map<String, String> conf = context.getConfiguration().toMap();
        return new Listener(
                conf.getOrDefault("streampilot.push.url", ""),
                conf.getOrDefault("streampilot.push.token", ""),
                context.getIOExecutor());
    }

    private static final HttpClient HTTP =
            HttpClient.newBuilder()
                    .version(HttpClient.Version.HTTP_1_1) // no h2c upgrade: plain requests
                    .connectTimeout(Duration.ofSeconds(2))
                    .build();

    static final class Listener implements JobStatusChangedListener {
        private final String url;
        private final String token;
        private final Executor executor;
        private final HttpClient http;

        Listener(String url, String token, Executor executor) {
            this.url = url;
            this.token = token;
            this.executor = executor;
            // Its own threads, not the caller's executor: a single-thread one (the client side's, for
            // JobCreatedEvent) would wait on itself while a send blocks it.
            this.http = HTTP;
        }

        @Override
        public void onEvent(JobStatusChangedEvent event) {
            LOG.debug("streampilot: {} of job {}", event.getClass().getSimpleName(), event.jobId());
            if (url.isEmpty()) {
                return;
            }
            final String body;
            try {
                body = toJson(event);
            } catch (RuntimeException e) {
                LOG.warn("streampilot: cannot describe {} of job {}", event.getClass().getSimpleName(), event.jobId(), e);
                return; // an event we cannot describe is left to polling
            }
            if (body == null) {
                return;
            }
            executor.execute(() -> post(body));
        }

        private void post(String body) {
            try {
                HttpRequest request =
                        HttpRequest.newBuilder(URI.create(url))
                                .timeout(Duration.ofSeconds(3))
                                .header("Content-Type", "application/json")
                                .header("X-Streampilot-Push", token)
                                .POST(HttpRequest.BodyPublishers.ofString(body))
                                .build();
                HttpResponse<Void> answer = http.send(request, HttpResponse.BodyHandlers.discarding());
                if (answer.statusCode() >= 300) {
                    LOG.warn("streampilot at {} answered {} to a pushed event", url, answer.statusCode());
                }
            } catch (Exception e) {
                // Lost: streampilot's next poll sees the same change.
                LOG.warn("streampilot at {} did not take a pushed event: {}", url, e.toString());
            }
        }
    }

    static String toJson(JobStatusChangedEvent event) {
        StringBuilder out = new StringBuilder(256);
        out.append("{\"job_id\":").append(quote(event.jobId().toHexString()));
        out.append(",\"job_name\":").append(quote(event.jobName()));
        out.append(",\"at_ms\":").append(System.currentTimeMillis());
        if (event instanceof JobExecutionStatusEvent) {
            JobExecutionStatusEvent status = (JobExecutionStatusEvent) event;
            out.append(",\"kind\":\"status\"");
            out.append(",\"old_status\":").append(quote(String.valueOf(status.oldStatus())));
            out.append(",\"new_status\":").append(quote(String.valueOf(status.newStatus())));
            Throwable error = status.exception();
            if (error != null) {
                String text = error.getClass().getName() + ": " + error.getMessage();
                out.append(",\"error\":").append(quote(text.length() > 2000 ? text.substring(0, 2000) : text));
            }
        } else if (event instanceof JobCreatedEvent) {
            JobCreatedEvent created = (JobCreatedEvent) event;
            out.append(",\"kind\":\"created\"");
            out.append(",\"mode\":").append(quote(String.valueOf(created.executionMode())));
            LineageGraph graph = created.lineageGraph();
            IdentityHashMap<LineageVertex, Integer> sources = new IdentityHashMap<>();
            IdentityHashMap<LineageVertex, Integer> sinks = new IdentityHashMap<>();
            out.append(",\"sources\":").append(vertices(graph == null ? null : graph.sources(), sources));
            out.append(",\"sinks\":").append(vertices(graph == null ? null : graph.sinks(), sinks));
            out.append(",\"relations\":[");
            List<String> edges = new ArrayList<>();
            if (graph != null && graph.relations() != null) {
                for (LineageEdge edge : graph.relations()) {
                    Integer from = sources.get(edge.source());
                    Integer to = sinks.get(edge.sink());
                    if (from != null && to != null) {
                        edges.add("[" + from + "," + to + "]");
                    }
                }
            }
            out.append(String.join(",", edges)).append("]");
        } else {
            return null;
        }
        return out.append("}").toString();
    }

    private static String vertices(List<? extends LineageVertex> list, IdentityHashMap<LineageVertex, Integer> index) {
        List<String> parts = new ArrayList<>();
        if (list != null) {
            for (LineageVertex vertex : list) {
                index.put(vertex, parts.size());
                List<String> datasets = new ArrayList<>();
                if (vertex.datasets() != null) {
                    for (LineageDataset d : vertex.datasets()) {
                        datasets.add("{\"name\":" + quote(d.name()) + ",\"namespace\":" + quote(d.namespace()) + "}");
                    }
                }
                parts.add("{\"datasets\":[" + String.join(",", datasets) + "]}");
            }
        }
        return "[" + String.join(",", parts) + "]";
    }

    static String quote(String text) {
        if (text == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder(text.length() + 2).append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        return out.append('"').toString();
    }
}
