"""Machine-readable assessment outputs: patchline JSON, SARIF 2.1.0, CycloneDX 1.6.

All three are stable and documented in docs/formats/assessment.md. The JSON
holds both the pending updates and the findings; SARIF has one result per
finding and per pending update; CycloneDX is the image's SBOM with the findings
as ``vulnerabilities`` under the advisory's own ID. Each is a module of this
package, listed in ``list.py``.
"""
