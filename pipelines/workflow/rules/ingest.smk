# ingest: vendor output -> <output>/<sample>/dataset/ (a `format: dataset` folder is copied as is).


rule ingest:
    input:
        step_inputs("ingest"),
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
