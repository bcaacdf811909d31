# deconvolve: cell-type proportions per spot / labels per cell -> <output>/<sample>/deconvolution/.


rule deconvolve:
    input:
        step_inputs("deconvolve"),
    output:
        directory(f"{OUT}/{{sample}}/deconvolution"),
    log:
        "logs/deconvolve/{sample}.log",
    threads: res("deconvolve", "threads")
    resources:
        mem_mb=res("deconvolve", "mem_mb"),
        runtime=res("deconvolve", "runtime"),
    params:
        command=step_command("deconvolve"),
    shell:
        "{params.command} > {log} 2>&1"
