import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

/**
 * The real Neo4j engine with its Bolt connector, embedded in a small process for local tests.
 * Usage: Neo4jServer HOME_DIR CONFIG_FILE READY_FILE (password from LINEAGE_NEO4J_PASSWORD).
 * READY_FILE is written once the password is set, so clients never meet the default one.
 */
public final class Neo4jServer {
    public static void main(String[] args) throws Exception {
        Path home = Path.of(args[0]).toAbsolutePath();
        String password = System.getenv().getOrDefault("LINEAGE_NEO4J_PASSWORD", "lineage-stream");
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .loadPropertiesFromFile(Path.of(args[1]))
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dbms.shutdown();
            stopped.countDown();
        }));
        // The first ALTER USER of a JVM costs seconds of query planning: skip it when the store
        // already has this password (the launcher script knows).
        if (!"1".equals(System.getenv("LINEAGE_NEO4J_PASSWORD_IS_SET"))) {
            setPassword(dbms, password);
        }
        Files.writeString(Path.of(args[2]), "ready\n");
        System.out.println("Neo4j ready; configuration " + args[1]);
        stopped.await();
    }

    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (RuntimeException e) {
            // Raised when the password already is this one: a restart of an existing store.
            if (!String.valueOf(e.getMessage()).contains("Old password and new password cannot be the same")) {
                throw e;
            }
        }
    }
}
