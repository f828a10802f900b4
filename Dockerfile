# syntax=docker/dockerfile:1
# One image for both services: `docker run IMAGE worker` or `IMAGE gateway`.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY . .
# pnpm and the pinned Node.js come through npm (package.json packageManager and nodeRuntime), as in the
# README commands; the build runs on that Node.js, the image on the same major.
RUN node scripts/bootstrap.mjs pnpm exec turbo run build \
 && node scripts/bootstrap.mjs pnpm --filter @nodebatch/cli deploy --prod --legacy /out

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out ./
USER 1000
EXPOSE 8080
ENTRYPOINT ["node", "dist/main.js"]
