# ingest: vendor output -> <output>/<sample>/dataset/ (a `format: dataset` folder is copied as is).
# Its inputs are the raw files themselves (raw_files in common.smk), so changing one re-runs ingest.


rule ingest:
    input:
        raw_files,
    output:
        directory(f"{OUT}/{{sample}}/dataset"),
    log:
        "logs/ingest/{sample}.log",
    threads: res("ingest", "threads")
    resources:
        mem_mb=res("ingest", "mem_mb"),
        runtime=res("ingest", "runtime"),
    params:
        command=step_command("ingest"),
    shell:
        "{params.command} > {log} 2>&1"
