/** The tenfold command line (picocli), its charts and the demo; an application, exporting nothing. */
module tenfold.tools {
    requires tenfold.qlora;
    requires info.picocli;
    requires java.management; // the launcher starts each rank with this JVM's flags
    requires com.fasterxml.jackson.databind;
    requires static java.desktop; // the charts; a runtime without it (the GPU bundle) skips them

    opens dev.tenfold.tools to info.picocli;
    opens dev.tenfold.tools.demo to info.picocli;
}
