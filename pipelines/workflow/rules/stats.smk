# stats: neighbourhood enrichment, co-occurrence, autocorrelation -> <output>/<sample>/stats/.


rule stats:
    input:
        step_inputs("stats"),
    output:
        directory(f"{OUT}/{{sample}}/stats"),
    log:
        "logs/stats/{sample}.log",
    threads: res("stats", "threads")
    resources:
        mem_mb=res("stats", "mem_mb"),
        runtime=res("stats", "runtime"),
    params:
        command=step_command("stats"),
    shell:
        "{params.command} > {log} 2>&1"
